"""The request-scoped identity: who is calling, readable from handlers, SSE bodies, graph nodes and tools.

The middleware sets a `ContextVar` for each request. Robyn runs the middleware and the handler in one context
(Python 3.11+), a run's task is created from a copy of the request's context, and LangChain runs sync tools in
executor threads with a copy of the context, so `get_current_user()` answers right in all of them.

Code that runs outside the request's context (an SSE body driven by Robyn's response thread, a plain worker
thread) gets the identity through `bind()` / `bind_iterator()`: they capture the caller's identity and set it,
for exactly the duration of each call, in a slot keyed by the running thread, cleared in a `finally`. The slot
is never set while a coroutine can be switched out, so no other request can ever read it. There is no
module-level thread-local that outlives a call.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class AuthUser:
    """The authenticated caller of one request."""

    identity: str
    permissions: tuple[str, ...] = ()
    user: Any = None  # the user object handed to `langgraph_sdk.Auth` handlers (dict-like, `.identity`)
    token: str | None = None  # the raw bearer token, for calls made on the user's behalf
    claims: Mapping[str, Any] = field(default_factory=dict)  # verified JWT claims, when a JWT was verified
    ref: str = ""  # unique per request: ties the ContextVar value to the request that set it

    @property
    def display_name(self) -> str:
        return str(getattr(self.user, "display_name", None) or self.identity)

    def __repr__(self) -> str:  # never print the token
        return f"AuthUser(identity={self.identity!r}, permissions={list(self.permissions)!r})"


_UNSET: Any = object()
_current: contextvars.ContextVar[AuthUser | None] = contextvars.ContextVar("robyn_server_auth_user")

# Identity for code running outside any request context, keyed by thread id. Only `_thread_scope` writes it,
# around one synchronous call, and removes the entry before returning.
_thread_slots: dict[int, AuthUser | None] = {}
_slots_lock = threading.Lock()


def set_current_user(user: AuthUser | None) -> contextvars.Token[AuthUser | None]:
    """Set the identity of the current request context (the middleware does this for every request)."""
    return _current.set(user)


def reset_current_user(token: contextvars.Token[AuthUser | None]) -> None:
    _current.reset(token)


def get_current_user() -> AuthUser | None:
    """The caller of the request being served here, or None (no auth configured, or a public route)."""
    user = _current.get(_UNSET)
    if user is not _UNSET:
        return user
    return _thread_slots.get(threading.get_ident())


def require_current_user() -> AuthUser:
    user = get_current_user()
    if user is None:
        raise LookupError("no authenticated user in this context")
    return user


def current_identity() -> str | None:
    user = get_current_user()
    return user.identity if user is not None else None


class _thread_scope:
    """Set the thread slot to `user` for one synchronous call; restore the previous value afterwards."""

    __slots__ = ("user", "ident", "previous")

    def __init__(self, user: AuthUser | None) -> None:
        self.user = user

    def __enter__(self) -> None:
        self.ident = threading.get_ident()
        with _slots_lock:
            self.previous = _thread_slots.get(self.ident, _UNSET)
            _thread_slots[self.ident] = self.user

    def __exit__(self, *exc: object) -> None:
        with _slots_lock:
            if self.previous is _UNSET:
                _thread_slots.pop(self.ident, None)
            else:
                _thread_slots[self.ident] = self.previous


def bind(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap `fn` so that, wherever it runs (a worker thread, a thread pool), it sees the identity of the caller
    of `bind()` and the rest of the caller's context. Capture happens now, in the request's code."""
    user = get_current_user()
    context = contextvars.copy_context()

    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        with _thread_scope(user):
            return context.copy().run(fn, *args, **kwargs)

    return bound


class _BoundIterator(Iterator[T]):
    """An iterator whose every step runs with the identity and context captured when it was made."""

    def __init__(self, iterator: Iterator[T], user: AuthUser | None, context: contextvars.Context) -> None:
        self._iterator = iterator
        self._user = user
        self._context = context
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        with self._lock, _thread_scope(self._user):
            return self._context.run(next, self._iterator)

    def close(self) -> None:
        close = getattr(self._iterator, "close", None)
        if close is not None:
            with self._lock, _thread_scope(self._user):
                self._context.run(close)


def bind_iterator(iterable: Any) -> Iterator[Any]:
    """Wrap a response body (an SSE generator) made in a handler so that its code sees the handler's identity
    while Robyn drives it from another thread. Call it in the handler: that is where the identity is captured."""
    return _BoundIterator(iter(iterable), get_current_user(), contextvars.copy_context())


def user_config(user: AuthUser | None) -> dict[str, Any]:
    """The keys stored in a run's `config.configurable` for `user`. Its token is not one of them: it reaches
    the graph at execution time only (`robyn_server.runs.credentials`)."""
    if user is None:
        return {}
    return {
        "langgraph_auth_user": user.user if user.user is not None else {"identity": user.identity},
        "langgraph_auth_user_id": user.identity,
        "langgraph_auth_permissions": list(user.permissions),
        "user_id": user.identity,
    }
