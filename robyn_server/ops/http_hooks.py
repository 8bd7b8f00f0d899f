"""The router hooks of operations: the first request hook starts the request (id, clock, server span), a
response hook echoes `X-Request-Id` on every answer (errors and streams included), counts it, writes its
access line and ends its span. Streams are counted and logged when their body ends."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from robyn import Request
from robyn.responses import StreamingResponse

from robyn_server.auth.context import current_identity
from robyn_server.ops import metrics, requests, tracing
from robyn_server.ops.logs import ACCESS

UNMATCHED = "<unmatched>"


def install(router: Any) -> None:
    """Run before every other request hook (CORS, auth) and after every response hook's peers."""

    def route_of(path: str) -> str:
        for route in router.routes:
            if route.regex.match(path):
                return route.path
        return UNMATCHED

    async def begin_request(request: Request) -> None:
        header = request.headers.get(requests.REQUEST_ID_HEADER)
        info = requests.begin(request.method, request.url.path, header)
        if header != info.request_id:
            request.headers.set(requests.REQUEST_ID_HEADER, info.request_id)  # handlers read the id we answer
        if tracing.ENABLED:
            tracing.start_server_span(info, request.headers)
        return None

    def finish_response(request: Request, response: Any) -> None:
        info = requests.current()
        if info is None or info.finished:
            return
        info.finished = True
        headers = getattr(response, "headers", None)
        if isinstance(headers, dict):
            headers[requests.REQUEST_ID_HEADER] = info.request_id
        elif headers is not None:
            headers.set(requests.REQUEST_ID_HEADER, info.request_id)
        if info.route is None:
            info.route = route_of(info.path)
        status = int(getattr(response, "status_code", 200) or 200)
        seconds = time.perf_counter() - info.started
        metrics.http_observed(info.method, info.route, status, seconds)
        user = current_identity()
        if isinstance(response, StreamingResponse):
            response.content = TrackedStream(response.content, info, status, user)
            return
        finished(info, status, seconds, user)

    router.request_hooks.insert(0, begin_request)
    router.response_hooks.append(finish_response)


def finished(info: requests.RequestInfo, status: int, seconds: float, user: str | None, stream: bool = False) -> None:
    """The access line and the end of the server span."""
    if ACCESS.isEnabledFor(logging.INFO):
        extra: dict[str, Any] = {
            "request_id": info.request_id,
            "method": info.method,
            "path": info.path,
            "route": info.route,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
        }
        if user is not None:
            extra["user"] = user
        if stream:
            extra["stream"] = True
        ACCESS.info("%s %s %s %.1fms", info.method, info.path, status, seconds * 1000, extra=extra)
    if info.span is not None:
        tracing.end_server_span(info, status)


class TrackedStream:
    """A streamed body that counts as open until it ends (exhausted, closed, or dropped by Robyn)."""

    __slots__ = ("_inner", "_info", "_status", "_user", "_open")

    def __init__(self, inner: Any, info: requests.RequestInfo, status: int, user: str | None) -> None:
        self._inner = iter(inner)
        self._info = info
        self._status = status
        self._user = user
        self._open = True
        metrics.stream_opened()

    def __iter__(self) -> TrackedStream:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._inner)
        except BaseException:
            self._end()
            raise

    def close(self) -> None:
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            self._end()

    def async_chunks(self) -> AsyncIterator[Any] | None:
        """The inner body read asynchronously (streamed by the request guard), counted the same way."""
        async_chunks = getattr(self._inner, "async_chunks", None)
        source = async_chunks() if async_chunks is not None else None
        return None if source is None else self._tracked(source)

    async def _tracked(self, source: AsyncIterator[Any]) -> AsyncIterator[Any]:
        try:
            async for chunk in source:
                yield chunk
        finally:
            try:
                await source.aclose()  # type: ignore[attr-defined]
            finally:
                self._end()

    def abandon(self) -> None:
        try:
            abandon = getattr(self._inner, "abandon", None)
            if abandon is not None:
                abandon()
        finally:
            self._end()

    def _end(self) -> None:
        if self._open:
            self._open = False
            metrics.stream_closed()
            finished(self._info, self._status, time.perf_counter() - self._info.started, self._user, stream=True)

    def __del__(self) -> None:
        self._end()
