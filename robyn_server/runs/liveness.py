"""Which server processes are alive: the test that crash recovery and cancels of orphaned runs share.

A process is gone when its heartbeat row is older than the instance timeout (another host died), or when it
ran on this host under a pid that no longer exists, or under this process's own pid (a previous life of it).
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

from robyn_server.config import env_float
from robyn_server.storage.base import Record, Storage

HOST = socket.gethostname()


def instance_timeout() -> float:
    """Seconds without a heartbeat after which a process on another host counts as dead."""
    return env_float("ROBYN_SERVER_INSTANCE_TIMEOUT_SECONDS", 30.0)


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_dead(instance: Record, stale_before: datetime) -> bool:
    here = instance["host"] == HOST
    if here and (instance["pid"] == os.getpid() or not pid_exists(int(instance["pid"]))):
        return True
    return instance["heartbeat_at"] < stale_before


async def owner_alive(storage: Storage, owner: str, stale_after: float) -> bool:
    """Whether the process `owner` may still be running (its instance row says so)."""
    if owner == storage.instance_id:
        return True
    stale_before = datetime.now(UTC) - timedelta(seconds=stale_after)
    return any(
        inst["instance_id"] == owner and not is_dead(inst, stale_before) for inst in await storage.instance_list()
    )


async def live_instances(storage: Storage, stale_after: float) -> set[str]:
    """Instance ids that may still be running (this one always); dead ones are forgotten on the way."""
    me = storage.instance_id
    stale_before = datetime.now(UTC) - timedelta(seconds=stale_after)
    live = {me}
    for inst in await storage.instance_list():
        iid = inst["instance_id"]
        if iid == me:
            continue
        if is_dead(inst, stale_before):
            await storage.instance_forget(iid)
        else:
            live.add(iid)
    return live
