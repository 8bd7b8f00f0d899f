"""The Redis event bus: run and thread events as Redis Streams, cancels and wake-ups over pub/sub.

- A run's events go to the stream `{prefix}:run:{run_id}` with ids `<ms>-<seq>` chosen by the worker, the
  same ids its local readers see, so `Last-Event-ID` works on any process. Its end is an `__end__` entry that
  carries the run's result (for `wait` and `join`). Streams expire `RESUMABLE_STREAM_TTL_SECONDS` after the
  run ends, those of runs not created resumable `UNRESUMABLE_TTL_SECONDS` after (readers that follow it live
  have read the end by then; the in-process bus drops such a log as soon).
- A thread's events (`GET /threads/{id}/stream`) go to `{prefix}:thread:{thread_id}`, trimmed to the last
  `THREAD_LOG_ENTRIES` entries, with ids Redis assigns.
- A thread's protocol-v2 events go to `{prefix}:v2:{thread_id}`, numbered by a script that appends a batch
  after the stream's last entry (ids `<seq>-0`), atomically, so `seq` keeps rising whichever process runs the
  thread's next run; trimmed to the last `DEFAULT_MAX_EVENTS` and expired like the thread streams. Every
  process's protocol readers, the executing one's included, follow a replica of it.
- Readers on a process that does not execute the run follow a local replica, filled by one relay task that
  blocks on `XREAD` over every followed stream; a newly followed stream interrupts that read with
  `CLIENT UNBLOCK`, so nothing waits for a poll interval.
- Cancels, wake-ups and deleted threads are published on `{prefix}:control`; every process listens. A worker
  starting a run created elsewhere asks there for the credentials its creator holds; the answer comes on a
  channel of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from robyn_server import serde
from robyn_server.protocol_v2.log import DEFAULT_MAX_EVENTS, ThreadEventLog
from robyn_server.streaming.bus import THREAD_LOG_ENTRIES, EventBus
from robyn_server.streaming.event_log import EventLog, format_event_id, parse_event_id

logger = logging.getLogger("robyn_server.bus")

END = b"__end__"
FOLLOW_BATCH = 1000
CREDENTIALS_WAIT_SECONDS = 2.0  # how long a worker waits for the creating process to hand over credentials
UNRESUMABLE_TTL_SECONDS = 5  # as long as the in-process bus keeps a finished log nobody can resume
FORGET_WAIT_SECONDS = 5.0  # a deleted thread's streams are deleted after its last run's events are written
THREAD_STREAM_TTL = 3600  # a thread's streams outlive its runs by at least an hour
PROTOCOL_BATCH = 500  # protocol-v2 events appended by one script call
PROTOCOL_IDLE_SECONDS = 60.0  # a protocol replica nobody reads is dropped after this long
PROTOCOL_REFRESH_SECONDS = 60.0  # how often the TTL of protocol streams being read is renewed

# KEYS[1]: a thread's protocol stream; ARGV: maxlen, ttl, the writer's epoch, then name/body pairs. Numbers the
# events after the stream's last one in one step, so two processes never give out the same seq.
PROTOCOL_APPEND = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local seq = 0
if #last > 0 then seq = tonumber(string.match(last[1][1], '^%d+')) end
for i = 4, #ARGV, 2 do
  seq = seq + 1
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], seq .. '-0', 'n', ARGV[i], 'b', ARGV[i + 1], 'p', ARGV[3])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return seq
"""


# KEYS[1]: a run's stream, KEYS[2]: its thread's stream; ARGV: the thread stream's maxlen, the end ('' none, 'h'
# handed back, 'e' the end marker with ARGV[3] its data), the run stream's TTL, the thread stream's TTL, then
# id/event/data triples. One call writes a batch of the run's events to both streams. An event whose id the run
# stream already holds (a batch sent again after a lost answer) is skipped in both, and so is a second end marker.
RUN_APPEND = """
for i = 6, #ARGV, 3 do
  local added = redis.pcall('XADD', KEYS[1], ARGV[i], 'e', ARGV[i + 1], 'd', ARGV[i + 2])
  if type(added) ~= 'table' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i + 1], 'd', ARGV[i + 2])
  end
end
if ARGV[2] ~= '' then
  if ARGV[2] == 'e' then
    local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
    if #last == 0 or last[1][2][2] ~= '__end__' then
      redis.call('XADD', KEYS[1], '*', 'e', '__end__', 'd', ARGV[3])
    end
  end
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
end
return 1
"""


class BusUnavailable(RedisConnectionError):
    """Redis cannot be reached: requests that need it answer 503."""


@dataclass(eq=False)
class _Outbox:
    """Events of one run waiting to be written to Redis, in order: id, event and data, flat."""

    run_key: str
    thread_key: str
    ttl: int  # seconds the run's stream is kept after its end
    items: list[str | bytes] = field(default_factory=list)
    end: bytes | None = None  # the end marker's data; b"" for a run handed back (no marker)
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class _ProtocolOutbox:
    """Protocol-v2 events of one thread waiting to be numbered and written, in order; shared by the thread's
    successive runs on this process, so one run's last events are written before the next run's first."""

    key: str
    items: list[bytes | str] = field(default_factory=list)  # name, body, name, body, ...
    writers: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class _ProtocolWriter:
    __slots__ = ("outbox", "released")

    def __init__(self, outbox: _ProtocolOutbox) -> None:
        self.outbox = outbox
        self.released = False
        outbox.writers += 1

    def append(self, name: str, body: bytes) -> None:
        self.outbox.items += (name, body)
        self.outbox.wake.set()

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.outbox.writers -= 1
            self.outbox.wake.set()


@dataclass(eq=False)
class _Follow:
    """A stream followed into a local replica."""

    key: str
    log: EventLog | ThreadEventLog
    last_id: str
    is_run: bool
    protocol: bool = False  # a protocol-v2 stream (its replica is a `ThreadEventLog`)
    idle_since: float | None = None


class RedisBus(EventBus):
    kind = "redis"
    shared = True

    def __init__(self, url: str, resumable_ttl_seconds: float = 120.0, prefix: str = "robyn") -> None:
        super().__init__(resumable_ttl_seconds)
        self.url = url
        self.prefix = prefix
        self.redis: aioredis.Redis | None = None
        self._follows: dict[str, _Follow] = {}
        self._follow_changed = asyncio.Event()
        self._relay_client_id: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._outboxes: dict[str, _Outbox] = {}
        self._unwritten: dict[_Outbox, None] = {}  # outboxes with events or an end to write, in order
        self._unwritten_added = asyncio.Event()
        self._run_append: Any = None
        self._finishing: dict[str, _Outbox] = {}  # by thread key: a finished run's last events being written
        self._protocol_outboxes: dict[str, _ProtocolOutbox] = {}
        self._protocol_loading: dict[str, asyncio.Future[None]] = {}
        self._protocol_refreshed = 0.0
        self._epoch = str(int(time.time() * 1000))  # protocol event ids differ from another process's
        self._protocol_append: Any = None

    def _run_key(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}"

    def _thread_key(self, thread_id: str) -> str:
        return f"{self.prefix}:thread:{thread_id}"

    def _protocol_key(self, thread_id: str) -> str:
        return f"{self.prefix}:v2:{thread_id}"

    @property
    def _thread_ttl(self) -> int:
        return max(int(self.resumable_ttl), THREAD_STREAM_TTL)

    @property
    def _control(self) -> str:
        return f"{self.prefix}:control"

    @property
    def _r(self) -> aioredis.Redis:
        if self.redis is None:
            raise BusUnavailable("the event bus is not started")
        return self.redis

    # lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        await super().start()
        self.redis = aioredis.from_url(self.url, socket_connect_timeout=5, health_check_interval=15)
        await self.redis.ping()
        self._protocol_append = self.redis.register_script(PROTOCOL_APPEND)
        self._run_append = self.redis.register_script(RUN_APPEND)
        await self.redis.script_load(RUN_APPEND)
        loop = asyncio.get_running_loop()
        self._follow_changed = asyncio.Event()
        self._unwritten_added = asyncio.Event()
        self._tasks = [
            loop.create_task(self._write_runs(), name="robyn-bus-writer"),
            loop.create_task(self._listen(), name="robyn-bus-control"),
            loop.create_task(self._relay(), name="robyn-bus-relay"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.redis is not None:
            await self.redis.aclose()

    async def ping(self) -> dict[str, Any]:
        await self._r.ping()
        return {"bus": self.kind}

    async def check(self) -> None:
        """A new run needs Redis for its events: with Redis away, refuse it (503) before anything is stored."""
        await self._r.ping()

    def pool_stats(self) -> dict[str, int]:
        """This process's Redis connection pool: connections in use (the control channel's subscriber holds
        one), idle and open; the relay's blocking reader has a connection of its own, outside the pool.
        redis-py keeps these counts in the pool's attributes only (it has no stats call)."""
        pool = getattr(self.redis, "connection_pool", None)
        if pool is None:
            return {}
        in_use = len(getattr(pool, "_in_use_connections", ()))
        available = len(getattr(pool, "_available_connections", ()))
        stats = {"pool_in_use": in_use, "pool_available": available, "pool_size": in_use + available}
        if getattr(pool, "max_connections", 0) < 2**31:  # redis-py's "unbounded" is 2**31
            stats["pool_max"] = int(pool.max_connections)
        return stats

    # run streams: writing -----------------------------------------------------------------
    async def run_writer(self, run_id: str, resumable: bool, thread_id: str, *, resumed: bool = True) -> EventLog:
        log = await super().run_writer(run_id, resumable, thread_id)
        run_key = self._run_key(run_id)
        last = await self._r.xrevrange(run_key, count=1) if resumed else None
        if last:  # a resumed attempt: continue after the events of the earlier one
            key = parse_event_id(last[0][0].decode())
            if key is not None:
                log.continue_after(key)
        ttl = max(1, int(self.resumable_ttl)) if resumable else UNRESUMABLE_TTL_SECONDS
        outbox = _Outbox(run_key, self._thread_key(thread_id), ttl)
        self._outboxes[run_id] = outbox
        unwritten, added = self._unwritten, self._unwritten_added

        def forward(key: tuple[int, int], event: str, data: bytes) -> None:
            outbox.items += (format_event_id(key), event, data)
            unwritten[outbox] = None
            added.set()

        log.on_append = forward
        return log

    async def _write_runs(self) -> None:
        """Write every run's new events to Redis: one script call per run with something to write, all of them
        in one pipeline, one pipeline at a time; what arrives meanwhile goes in the next one. Under load that
        is a few round trips a second for any number of runs, instead of one per event per run."""
        while True:
            await self._unwritten_added.wait()
            self._unwritten_added.clear()
            batch = [(outbox, outbox.items, outbox.end) for outbox in self._unwritten]
            self._unwritten.clear()
            for outbox, _, _ in batch:
                outbox.items = []
            try:
                try:
                    await self._append_runs(batch)
                except NoScriptError:  # Redis restarted without its scripts: load it, send the batch again
                    await self._r.script_load(RUN_APPEND)
                    await self._append_runs(batch)
            except Exception as exc:  # Redis away: the events are kept here and written when it answers
                logger.warning("could not write run events to Redis: %s", exc)
                for outbox, items, _ in batch:
                    outbox.items[:0] = items
                self._unwritten.update(dict.fromkeys(outbox for outbox, _, _ in batch))  # each keeps its own order
                await asyncio.sleep(0.5)
                self._unwritten_added.set()
                continue
            for outbox, _, end in batch:
                if end is not None and outbox not in self._unwritten:
                    outbox.done.set()
                    if self._finishing.get(outbox.thread_key) is outbox:
                        del self._finishing[outbox.thread_key]

    async def _append_runs(self, batch: list[tuple[_Outbox, list[str | bytes], bytes | None]]) -> None:
        pipe = self._r.pipeline(transaction=False)
        for outbox, items, end in batch:
            mark = "" if end is None else "e" if end else "h"
            args = [THREAD_LOG_ENTRIES, mark, end or b"", outbox.ttl, self._thread_ttl, *items]
            pipe.evalsha(self._run_append.sha, 2, outbox.run_key, outbox.thread_key, *args)
        await pipe.execute()

    def finish_run(self, run_id: str, thread_id: str, log: EventLog, result: Any, final: bool = True) -> None:
        super().finish_run(run_id, thread_id, log, result, final)
        outbox = self._outboxes.pop(run_id, None)
        if outbox is None:
            return
        if final:
            outbox.end = serde.dumps(result)
        else:
            outbox.end = b""  # handed back: no end marker, the next attempt continues the stream
            outbox.ttl = max(outbox.ttl, int(self.resumable_ttl))  # kept until another process takes it
        self._finishing[outbox.thread_key] = outbox
        self._unwritten[outbox] = None
        self._unwritten_added.set()

    async def end_run(self, run_id: str, result: Any) -> None:
        await super().end_run(run_id, result)
        key = self._run_key(run_id)
        pipe = self._r.pipeline(transaction=False)
        pipe.xadd(key, {"e": END, "d": serde.dumps(result)})
        pipe.expire(key, max(1, int(self.resumable_ttl)))
        await pipe.execute()

    # run streams: reading -----------------------------------------------------------------
    async def run_reader(self, run_id: str, resumable: bool) -> EventLog:
        local = self._runs.get(run_id)
        if local is not None and run_id in self._outboxes:
            return local  # executing here: read the worker's own log
        return await self._follow(self._run_key(run_id), resumable, is_run=True)

    async def find_run(self, run_id: str, resumable: bool = True) -> EventLog | None:
        local = self._runs.get(run_id)
        if local is not None:
            return local
        key = self._run_key(run_id)
        if not await self._r.exists(key):
            return None
        log = await self._follow(key, resumable, is_run=True)
        if log.closed:  # finished: keep the copy for later joins until the stream expires
            self._runs[run_id] = log
            self._drop_later(run_id, log, self.resumable_ttl if resumable else 5.0)
        return log

    # thread streams -----------------------------------------------------------------------
    async def thread_reader(self, thread_id: str) -> EventLog:
        key = self._thread_key(thread_id)
        follow = self._follows.get(key)
        if follow is not None and not follow.log.closed:
            return follow.log
        log = EventLog(resumable=True, max_entries=THREAD_LOG_ENTRIES)
        last = await self._r.xrevrange(key, count=1)
        self._add_follow(_Follow(key, log, last[0][0].decode() if last else "0-0", is_run=False))
        # earlier entries are there for Last-Event-ID: copy them in before following
        for entry_id, fields in await self._r.xrange(key, count=THREAD_LOG_ENTRIES):
            self._append(log, entry_id, fields)
        return log

    async def publish_thread(self, thread_id: str, event: str, data: Any) -> None:
        await self._r.xadd(self._thread_key(thread_id), {"e": event, "d": serde.dumps(data)},
                           maxlen=THREAD_LOG_ENTRIES, approximate=True)  # fmt: skip

    async def forget_thread(self, thread_id: str) -> None:
        """Delete the thread's streams and end their readers here and, through the control channel, elsewhere;
        after the last events of a run that just finished here are written (else they would re-create them)."""
        self._forget_here(thread_id)
        finishing = self._finishing.get(self._thread_key(thread_id))
        if finishing is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finishing.done.wait(), FORGET_WAIT_SECONDS)
        pipe = self._r.pipeline(transaction=False)  # one round trip
        pipe.delete(self._thread_key(thread_id), self._protocol_key(thread_id))
        pipe.publish(self._control, serde.dumps({"type": "forget", "thread_id": thread_id}))
        await pipe.execute()

    def _forget_here(self, thread_id: str) -> None:
        for key in (self._thread_key(thread_id), self._protocol_key(thread_id)):
            follow = self._follows.pop(key, None)
            if follow is not None:
                follow.log.close()

    # protocol-v2 thread logs --------------------------------------------------------------
    def protocol_writer(self, thread_id: str) -> _ProtocolWriter:
        key = self._protocol_key(thread_id)
        outbox = self._protocol_outboxes.get(key)
        if outbox is None:
            outbox = self._protocol_outboxes[key] = _ProtocolOutbox(key)
            asyncio.get_running_loop().create_task(self._flush_protocol(outbox))
        return _ProtocolWriter(outbox)

    async def _flush_protocol(self, outbox: _ProtocolOutbox) -> None:
        """Number and write the thread's events in batches until no run of the thread writes here."""
        while True:
            while outbox.items:
                batch = outbox.items[: 2 * PROTOCOL_BATCH]
                try:
                    await self._protocol_append(
                        keys=[outbox.key], args=[DEFAULT_MAX_EVENTS, self._thread_ttl, self._epoch, *batch]
                    )
                except (RedisConnectionError, RedisTimeoutError) as exc:  # Redis away: kept, written once it answers
                    logger.warning("could not write protocol events to Redis: %s", exc)
                    await asyncio.sleep(0.5)
                    continue
                except Exception as exc:  # refused (e.g. out of memory): drop the batch rather than stall the thread
                    logger.error("Redis refused %d protocol events of %s: %s", len(batch) // 2, outbox.key, exc)
                del outbox.items[: len(batch)]
            if outbox.writers <= 0:
                if self._protocol_outboxes.get(outbox.key) is outbox:
                    del self._protocol_outboxes[outbox.key]
                return
            await outbox.wake.wait()
            outbox.wake.clear()

    async def protocol_reader(self, thread_id: str) -> ThreadEventLog:
        """A replica of the thread's protocol stream: what it keeps now is copied in at once (so `since` finds
        its place), later events arrive through the relay. One replica per thread per process."""
        key = self._protocol_key(thread_id)
        while True:
            follow = self._follows.get(key)
            if follow is not None and not follow.log.closed:
                follow.idle_since = None
                return follow.log  # type: ignore[return-value]
            loading = self._protocol_loading.get(key)
            if loading is None:
                break
            await asyncio.shield(loading)  # another request is copying it in: use that replica
        done = self._protocol_loading[key] = asyncio.get_running_loop().create_future()
        try:
            log = ThreadEventLog()
            last_id = "0-0"
            for entry_id, fields in await self._r.xrange(key):
                last_id = entry_id.decode()
                self._append_protocol(log, entry_id, fields)
            self._add_follow(_Follow(key, log, last_id, is_run=False, protocol=True))
            return log
        finally:
            del self._protocol_loading[key]
            done.set_result(None)

    async def protocol_last_seq(self, thread_id: str) -> int:
        last = await self._r.xrevrange(self._protocol_key(thread_id), count=1)
        return int(last[0][0].split(b"-", 1)[0]) if last else 0

    @staticmethod
    def _append_protocol(log: ThreadEventLog, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        seq = int(entry_id.split(b"-", 1)[0])
        log.append_numbered(seq, fields.get(b"p", b"0"), fields.get(b"n", b"").decode(), fields.get(b"b", b"{}"))

    # following ----------------------------------------------------------------------------
    async def _follow(self, key: str, resumable: bool, *, is_run: bool) -> EventLog:
        """A replica of the stream: what it holds now is copied in at once (so `Last-Event-ID` finds its
        place), the rest arrives through the relay."""
        follow = self._follows.get(key)
        if follow is not None and not follow.log.closed:
            return follow.log
        log = EventLog(resumable)
        last_id = "0-0"
        for entry_id, fields in await self._r.xrange(key):
            last_id = entry_id.decode()
            if self._append(log, entry_id, fields):
                return log
        follow = _Follow(key, log, last_id, is_run)
        self._add_follow(follow)
        return follow.log

    def _add_follow(self, follow: _Follow) -> None:
        self._follows[follow.key] = follow
        self._follow_changed.set()
        if self._relay_client_id is not None and self.redis is not None:
            asyncio.get_running_loop().create_task(self._unblock())

    async def _unblock(self) -> None:
        try:
            if self._relay_client_id is not None:
                await self._r.client_unblock(self._relay_client_id)
        except RedisError:
            pass

    @staticmethod
    def _append(log: EventLog, entry_id: bytes, fields: dict[bytes, bytes]) -> bool:
        """Copy one stream entry into a replica; True at the run's end marker."""
        event = fields.get(b"e", b"")
        if event == END:
            data = fields.get(b"d", b"")
            if data:
                log.close(serde.loads(data))
                return True
            return False
        key = parse_event_id(entry_id.decode())
        log.append(event.decode(), fields.get(b"d", b""), key=key)
        return False

    async def _relay(self) -> None:
        """Fill every replica from Redis: one blocking XREAD over all followed streams."""
        client = aioredis.from_url(self.url, socket_connect_timeout=5, single_connection_client=True)
        try:
            self._relay_client_id = int(await client.client_id())
            while True:
                self._drop_idle_follows()
                await self._refresh_protocol_streams()
                if not self._follows:
                    self._follow_changed.clear()
                    await self._follow_changed.wait()
                    continue
                self._follow_changed.clear()
                streams = {f.key: f.last_id for f in self._follows.values()}
                try:
                    found = await client.xread(streams, count=FOLLOW_BATCH, block=5000)
                except RedisError as exc:
                    logger.warning("reading events from Redis failed: %s", exc)
                    await asyncio.sleep(0.5)
                    continue
                for raw_key, entries in found or []:
                    follow = self._follows.get(raw_key.decode())
                    if follow is None:
                        continue
                    for entry_id, fields in entries:
                        follow.last_id = entry_id.decode()
                        if follow.protocol:
                            self._append_protocol(follow.log, entry_id, fields)  # type: ignore[arg-type]
                        elif self._append(follow.log, entry_id, fields) and follow.is_run:  # type: ignore[arg-type]
                            self._follows.pop(follow.key, None)
                            break
        finally:
            self._relay_client_id = None
            await client.aclose()

    def _drop_idle_follows(self) -> None:
        """Stop following streams that ended (a run's follow also ends at its end marker), and protocol
        streams nobody here has read for a while (a later reader copies them in again)."""
        now = time.monotonic()
        for key, follow in list(self._follows.items()):
            if follow.log.closed:
                self._follows.pop(key, None)
            elif follow.protocol:
                if follow.log.users:  # type: ignore[union-attr]
                    follow.idle_since = None
                elif follow.idle_since is None:
                    follow.idle_since = now
                elif now - follow.idle_since > PROTOCOL_IDLE_SECONDS:
                    self._follows.pop(key, None)

    async def _refresh_protocol_streams(self) -> None:
        """Renew the TTL of protocol streams being read here: one a client follows must not expire under it
        (its next run would number from 1 again, behind the replica's place)."""
        now = time.monotonic()
        if now - self._protocol_refreshed < PROTOCOL_REFRESH_SECONDS:
            return
        self._protocol_refreshed = now
        keys = [f.key for f in self._follows.values() if f.protocol and f.log.users]  # type: ignore[union-attr]
        if not keys:
            return
        try:
            pipe = self._r.pipeline(transaction=False)
            for key in keys:
                pipe.expire(key, self._thread_ttl)
            await pipe.execute()
        except RedisError as exc:
            logger.warning("could not renew protocol streams in Redis: %s", exc)

    # control ------------------------------------------------------------------------------
    async def _listen(self) -> None:
        while True:
            pubsub = self._r.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._control)
                async for message in pubsub.listen():
                    await self._on_control(serde.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("the Redis control channel failed: %s; subscribing again", exc)
                await asyncio.sleep(0.5)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:
                    pass

    async def _on_control(self, message: dict[str, Any]) -> None:
        try:
            if message.get("type") == "cancel" and self.on_cancel is not None:
                await self.on_cancel(message["run_id"], message["action"], message.get("error"))
            elif message.get("type") == "wake" and self.on_wake is not None:
                await self.on_wake(message["thread_id"])
            elif message.get("type") == "credentials" and self.on_credentials is not None:
                held = self.on_credentials(message["run_id"])
                if held is not None:  # only the creating process answers (maybe with none), on the asker's channel
                    await self._r.publish(message["reply"], serde.dumps({"held": held}))
            elif message.get("type") == "forget":
                self._forget_here(message["thread_id"])
        except Exception as exc:
            logger.warning("control message %s failed: %s", message.get("type"), exc)

    async def send_cancel(self, run_id: str, action: str, error: dict[str, str] | None) -> None:
        await self._r.publish(self._control, serde.dumps({"type": "cancel", "run_id": run_id, "action": action,
                                                          "error": error}))  # fmt: skip

    async def wake(self, thread_id: str) -> None:
        await self._r.publish(self._control, serde.dumps({"type": "wake", "thread_id": thread_id}))

    async def fetch_credentials(self, run_id: str) -> dict[str, str] | None:
        """Ask every process for the credentials held for `run_id` and take the creator's answer, sent on a
        channel of this request's own (pub/sub: never written to a key); None when no answer comes in time
        (the creating process is gone: only then does the start wait the whole time)."""
        reply = f"{self.prefix}:credentials:{uuid.uuid4().hex}"
        pubsub = self._r.pubsub(ignore_subscribe_messages=True)
        loop = asyncio.get_running_loop()
        try:
            await pubsub.subscribe(reply)
            ask = {"type": "credentials", "run_id": run_id, "reply": reply}
            await self._r.publish(self._control, serde.dumps(ask))
            deadline = loop.time() + CREDENTIALS_WAIT_SECONDS
            while (left := deadline - loop.time()) > 0:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
                if message is not None:
                    return serde.loads(message["data"]).get("held")
            return None
        finally:
            await pubsub.aclose()
