"""A thin routing layer over Robyn: JSON in and out, `{"detail": ...}` errors, 404/405 like the reference.

Robyn answers unknown routes with a plain-text 404 and unhandled exceptions with a plain-text 500, so every
handler is wrapped here and a global middleware answers unknown paths and methods with the reference's JSON.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote_plus

from langgraph.errors import EmptyInputError, InvalidUpdateError
from langgraph.store.base import InvalidNamespaceError
from pydantic import BaseModel, ValidationError
from robyn import Headers, Request, Response, Robyn
from robyn.responses import StreamingResponse

from robyn_server import serde
from robyn_server.errors import ApiError, internal_error_body
from robyn_server.ops.requests import set_route
from robyn_server.routes.common import check_json_limits, check_text
from robyn_server.schemas import MAX_INT32
from robyn_server.storage.errors import is_unavailable, unavailable_detail
from robyn_server.streaming import handoff

logger = logging.getLogger("robyn_server")

JSON_HEADERS = {"content-type": "application/json"}
METHODS_CACHE_SIZE = 4096  # paths whose allowed methods are kept (cleared when full: ids make paths unbounded)
ModelT = TypeVar("ModelT", bound=BaseModel)


class ApiRequest:
    """What a handler sees of a request: parsed path/query/body, headers and the caller's identity."""

    __slots__ = ("raw", "path_params", "_json")

    _MISSING = object()

    def __init__(self, raw: Request) -> None:
        self.raw = raw
        self.path_params: dict[str, str] = raw.path_params or {}
        self._json: Any = self._MISSING

    @property
    def method(self) -> str:
        return self.raw.method

    @property
    def path(self) -> str:
        return self.raw.url.path

    def header(self, name: str) -> str | None:
        return self.raw.headers.get(name)

    def query(self, name: str, default: str | None = None) -> str | None:
        """A query parameter, percent-decoded (Robyn 0.88 hands them over still encoded: `a%20b`, `k%2B1+x`)."""
        value = self.raw.query_params.get(name, None)
        if value is None:
            return default
        return check_text(name, unquote_plus(value))

    def query_bool(self, name: str, default: bool = False) -> bool:
        value = self.query(name)
        if value is None:
            return default
        return value.strip().lower() in ("1", "true", "yes", "on")

    def query_int(self, name: str, default: int, minimum: int = 0, maximum: int = MAX_INT32) -> int:
        value = self.query(name)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise ApiError(422, f"Invalid value for query parameter '{name}': {value!r} is not an integer")
        if not minimum <= number <= maximum:
            raise ApiError(422, f"Invalid value for query parameter '{name}': must be from {minimum} to {maximum}")
        return number

    def uuid_param(self, name: str, label: str) -> str:
        """A path id that must be a UUID (422 `Invalid <label> ID: must be a UUID` otherwise)."""
        return validate_uuid(self.path_params[name], label)

    def json(self) -> Any:
        """The body parsed as JSON; an empty body reads as `{}`."""
        if self._json is self._MISSING:
            body = self.raw.body
            if not body or (isinstance(body, (str, bytes)) and not body.strip()):
                self._json = {}
            else:
                try:
                    self._json = serde.loads(body)
                except Exception:
                    raise ApiError(422, "Invalid JSON in request body")
                check_json_limits(body.encode() if isinstance(body, str) else body, self._json)
        return self._json

    def body(self, model: type[ModelT]) -> ModelT:
        """The body validated against a pydantic model (422 with the failures otherwise)."""
        data = self.json()
        return validate(model, data)


def validate(model: type[ModelT], data: Any) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, format_validation_error(exc, model.__name__))


def format_validation_error(exc: ValidationError, schema_name: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "missing":
            parts.append(f'"{loc}" is a required property')
        elif loc:
            parts.append(f'"{loc}": {err["msg"]}')
        else:
            parts.append(err["msg"])
    return "\n".join(parts) + f"\n\nFailed validating schema {schema_name}"


def validate_uuid(value: str, label: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ApiError(422, f"Invalid {label} ID: must be a UUID")


# ---------------------------------------------------------------------------- responses


@dataclass
class JsonResponse:
    """A JSON body with a status and extra headers."""

    body: Any
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StreamResponse:
    """A streamed body produced by a sync iterator of bytes (SSE or padded JSON)."""

    chunks: Iterable[bytes]
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "text/event-stream"


def empty(status_code: int = 204, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status_code, headers=headers or {}, description=b"")


def error_response(status_code: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status_code,
        headers={**JSON_HEADERS, **(headers or {})},
        description=serde.dumps({"detail": detail}),
    )


def internal_error(request: Request, exc: BaseException | None = None) -> Response:
    """The logged 500 of a bug: `{"detail": "Internal server error", "request_id": ...}`, nothing else."""
    body = internal_error_body(f"{request.method} {request.url.path}", exc)
    return Response(status_code=500, headers=dict(JSON_HEADERS), description=serde.dumps(body))


def _to_robyn(result: Any) -> Any:
    if isinstance(result, (Response, StreamingResponse)):
        return result
    if isinstance(result, JsonResponse):
        return Response(
            status_code=result.status_code,
            headers={**JSON_HEADERS, **result.headers},
            description=serde.dumps(result.body),
        )
    if isinstance(result, StreamResponse):
        media_type = result.media_type
        if media_type == "text/event-stream":
            media_type += "; charset=utf-8"
        headers = Headers({**result.headers, "Content-Type": media_type})
        return StreamingResponse(
            content=iter(result.chunks), status_code=result.status_code, headers=headers, media_type=media_type
        )
    return Response(status_code=200, headers=dict(JSON_HEADERS), description=serde.dumps(result))


# ---------------------------------------------------------------------------- routing

Handler = Callable[[ApiRequest], Awaitable[Any]]


@dataclass
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tags: list[str]
    body_model: type[BaseModel] | None
    regex: re.Pattern[str]


def _compile(path: str) -> re.Pattern[str]:
    pattern = re.sub(r":([a-zA-Z_]+)", r"(?P<\1>[^/]+)", path)
    return re.compile(f"^{pattern}/?$")


RequestHook = Callable[[Request], Awaitable[Any]]
ResponseHook = Callable[[Request, Any], None]


class Router:
    """The route table: registers handlers on Robyn and knows every path for 404/405 and OpenAPI.

    `request_hooks` run first for every request (CORS preflight, authentication): a hook returns a response to
    answer at once, or None to go on. `response_hooks` may add headers to every response, streams included
    (Robyn's own `after_request` skips streaming responses).
    """

    def __init__(self, max_body_bytes: int) -> None:
        self.routes: list[Route] = []
        self.max_body_bytes = max_body_bytes
        self._methods_cache: dict[str, list[str] | None] | None = None  # from `mount` on, when routes are final
        self.request_hooks: list[RequestHook] = []
        self.response_hooks: list[ResponseHook] = []
        self.openapi_extensions: list[Callable[[dict[str, Any]], None]] = []  # e.g. merge http.app's routes

    def add(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        summary: str = "",
        tags: list[str] | None = None,
        body_model: type[BaseModel] | None = None,
    ) -> None:
        self.routes.append(
            Route(method, path, handler, summary or handler.__doc__ or "", tags or [], body_model, _compile(path))
        )
        if self._methods_cache is not None:
            self._methods_cache.clear()

    def decorate(self, request: Request, response: Any) -> Any:
        for hook in self.response_hooks:
            hook(request, response)
        return response

    async def gate(self, request: Request) -> Any:
        """The global middleware: request hooks, then JSON 404/405 for what no route serves."""
        for hook in self.request_hooks:
            try:
                answer = await hook(request)
            except ApiError as exc:
                answer = error_response(exc.status_code, exc.detail, exc.headers)
            except Exception as exc:  # Robyn would answer a plain-text 500
                answer = internal_error(request, exc)
            if answer is request:  # the hook lets the request through to its route, past the later hooks
                return request
            if answer is not None:
                return self.decorate(request, answer)
        methods = self.allowed_methods(request.url.path)
        if methods is None:
            return self.decorate(request, error_response(404, "Not Found"))
        if request.method not in methods:
            allow = ", ".join(sorted(set(methods)))
            return self.decorate(request, error_response(405, "Method Not Allowed", {"allow": allow}))
        return request

    def allowed_methods(self, path: str) -> list[str] | None:
        """Methods served at a path, or None when no route matches it at all."""
        if self._methods_cache is not None:
            cached = self._methods_cache.get(path, self)
            if cached is not self:
                return cached  # type: ignore[return-value]
        methods = [r.method for r in self.routes if r.regex.match(path)] or None
        if self._methods_cache is not None:  # ~70 regexes a request otherwise; repeated paths are the common case
            if len(self._methods_cache) >= METHODS_CACHE_SIZE:
                self._methods_cache.clear()
            self._methods_cache[path] = methods
        return methods

    def template(self, method: str, path: str) -> str | None:
        """The route template serving `method` at `path` (after `http.mount_prefix`), or None."""
        return next((r.path for r in self.routes if r.method == method and r.regex.match(path)), None)

    def mount(self, app: Robyn) -> None:
        self._methods_cache = {}
        for route in self.routes:
            app.add_route(route.method, route.path, self._wrap(route.handler, route.path))

    def _wrap(self, handler: Handler, template: str = "") -> Callable[[Request], Awaitable[Any]]:
        max_body = self.max_body_bytes

        async def robyn_handler(request: Request) -> Any:
            set_route(template)  # the route template labels this request's metrics and span
            response = self.decorate(request, await answer(request))
            return handoff.offer(request.headers, response) or response  # the guard streams it, if it can

        async def answer(request: Request) -> Any:
            try:
                body = request.body
                if body and len(body) > max_body:
                    raise ApiError(413, f"Request body too large (limit: {max_body} bytes)")
                return _to_robyn(await handler(ApiRequest(request)))
            except ApiError as exc:
                return error_response(exc.status_code, exc.detail, exc.headers)
            except (InvalidUpdateError, EmptyInputError) as exc:  # LangGraph refusing the client's input
                logger.info("bad request on %s %s: %s", request.method, request.url.path, exc)
                return error_response(400, str(exc))
            except InvalidNamespaceError as exc:
                return error_response(422, str(exc))
            except NotImplementedError as exc:
                return error_response(501, str(exc) or "Not Implemented")
            except Exception as exc:
                if is_unavailable(exc):
                    logger.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
                    return error_response(503, unavailable_detail(exc))
                return internal_error(request, exc)

        robyn_handler.__name__ = getattr(handler, "__name__", "handler")
        robyn_handler.__doc__ = handler.__doc__
        return robyn_handler
