"""Run-creation limits: concurrent runs and creation rate per identity, and a global queue limit.

Over a limit, run creation answers 429 `{"detail": ...}` with `Retry-After` and nothing is stored, so runs
already queued are untouched. Concurrent runs (pending or running, per caller) are counted by storage in the
same atomic step that stores the run (`Storage.run_create`, under a lock per caller that holds across
processes), so a burst of creations by one caller never exceeds the maximum. The global queue (pending runs)
is counted in storage before the run is stored, so every process sees the same queue, but a burst may pass it
by a few runs. The rate is a token bucket per identity in each process. Per-identity limits need an
authenticated caller; with auth off only the global queue limit applies.

    ROBYN_SERVER_MAX_RUNS_PER_USER      concurrent pending+running runs per identity (0: unlimited)
    ROBYN_SERVER_RUNS_PER_MINUTE        run creations per minute per identity (0: unlimited)
    ROBYN_SERVER_RUN_BURST              runs an identity may create at once before the rate applies (default:
                                        the per-minute rate)
    ROBYN_SERVER_MAX_PENDING_RUNS       pending runs in the whole queue (0: unlimited)
    ROBYN_SERVER_LIMIT_RETRY_AFTER_SECONDS  the Retry-After of the two count limits (default 1)
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from robyn_server.config import env_float, env_int
from robyn_server.errors import ApiError
from robyn_server.ops import metrics


@dataclass
class Limits:
    max_runs_per_user: int = 0
    runs_per_minute: float = 0.0
    burst: float = 0.0
    max_pending_runs: int = 0
    retry_after: int = 1
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_env(cls) -> Limits:
        rate = env_float("ROBYN_SERVER_RUNS_PER_MINUTE", 0.0)
        return cls(
            max_runs_per_user=env_int("ROBYN_SERVER_MAX_RUNS_PER_USER", 0),
            runs_per_minute=rate,
            burst=env_float("ROBYN_SERVER_RUN_BURST", rate) or rate,
            max_pending_runs=env_int("ROBYN_SERVER_MAX_PENDING_RUNS", 0),
            retry_after=max(1, env_int("ROBYN_SERVER_LIMIT_RETRY_AFTER_SECONDS", 1)),
        )

    @property
    def active(self) -> bool:
        return bool(self.max_runs_per_user or self.runs_per_minute or self.max_pending_runs)

    def max_creator_runs(self, identity: str | None) -> int:
        """The `max_creator_runs` for `Storage.run_create` (0: no per-caller limit for this caller)."""
        return self.max_runs_per_user if identity is not None else 0

    async def check_run_creation(self, storage: Any, identity: str | None) -> None:
        """Raise 429 when the queue is full or `identity` (None: an unauthenticated caller) is over its rate.
        The concurrent-runs limit is applied by storage when the run is stored (`too_many_runs`)."""
        if not self.active:
            return
        if self.max_pending_runs > 0:
            runs = await storage.run_list_by_status(["pending"])
            if len(runs) >= self.max_pending_runs:
                metrics.run_rejected("queue")
                raise self._refuse(f"The run queue is full ({self.max_pending_runs} pending runs). Retry later.")
        if identity is not None and self.runs_per_minute > 0:
            wait = self._take(identity)
            if wait > 0:
                metrics.run_rejected("rate")
                raise self._refuse(
                    f"Too many runs created: {self.runs_per_minute:g} per minute allowed per user.", math.ceil(wait)
                )

    def too_many_runs(self, identity: str) -> ApiError:
        """The 429 for a creation storage refused (`RunLimitReached`); the rate token it took is given back."""
        metrics.run_rejected("concurrent")
        if self.runs_per_minute > 0:
            with self._lock:
                tokens, last = self._buckets.get(identity, (0.0, time.monotonic()))
                self._buckets[identity] = (min(max(1.0, self.burst), tokens + 1.0), last)
        return self._refuse(
            f"Too many runs in progress: {self.max_runs_per_user} pending or running runs allowed per user."
        )

    def _take(self, identity: str) -> float:
        """Take one token from the identity's bucket; returns 0, or the seconds until a token is there."""
        per_second = self.runs_per_minute / 60.0
        capacity = max(1.0, self.burst)
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(identity, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * per_second)
            if tokens >= 1.0:
                self._buckets[identity] = (tokens - 1.0, now)
                return 0.0
            self._buckets[identity] = (tokens, now)
            return (1.0 - tokens) / per_second

    def _refuse(self, detail: str, retry_after: int | None = None) -> ApiError:
        return ApiError(429, detail, {"Retry-After": str(max(1, retry_after or self.retry_after))})


_limits: dict[str, Limits] = {}


def current() -> Limits:
    """This process's limits, read from the environment once."""
    limits = _limits.get("limits")
    if limits is None:
        limits = _limits["limits"] = Limits.from_env()
    return limits
