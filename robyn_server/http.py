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

from langgraph.errors import EmptyInputError, InvalidUpdateError
from pydantic import BaseModel, ValidationError
from robyn import Headers, Request, Response, Robyn
from robyn.responses import StreamingResponse

from robyn_server import serde
from robyn_server.errors import ApiError
from robyn_server.storage.errors import UNAVAILABLE as DATABASE_UNAVAILABLE
from robyn_server.storage.errors import unavailable_detail

logger = logging.getLogger("robyn_server")

JSON_HEADERS = {"content-type": "application/json"}
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
        return self.raw.query_params.get(name, default)

    def query_bool(self, name: str, default: bool = False) -> bool:
        value = self.query(name)
        if value is None:
            return default
        return value.strip().lower() in ("1", "true", "yes", "on")

    def query_int(self, name: str, default: int) -> int:
        value = self.query(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise ApiError(422, f"Invalid value for query parameter '{name}': {value!r} is not an integer")

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

    def decorate(self, request: Request, response: Any) -> Any:
        for hook in self.response_hooks:
            hook(request, response)
        return response

    async def gate(self, request: Request) -> Any:
        """The global middleware: request hooks, then JSON 404/405 for what no route serves."""
        for hook in self.request_hooks:
            answer = await hook(request)
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
        methods = [r.method for r in self.routes if r.regex.match(path)]
        return methods or None

    def mount(self, app: Robyn) -> None:
        for route in self.routes:
            app.add_route(route.method, route.path, self._wrap(route.handler))

    def _wrap(self, handler: Handler) -> Callable[[Request], Awaitable[Any]]:
        max_body = self.max_body_bytes

        async def robyn_handler(request: Request) -> Any:
            return self.decorate(request, await answer(request))

        async def answer(request: Request) -> Any:
            try:
                body = request.body
                if body and len(body) > max_body:
                    raise ApiError(413, f"Request body too large (limit: {max_body} bytes)")
                return _to_robyn(await handler(ApiRequest(request)))
            except ApiError as exc:
                return error_response(exc.status_code, exc.detail, exc.headers)
            except (ValueError, TypeError, InvalidUpdateError, EmptyInputError) as exc:
                logger.info("bad request on %s %s: %s", request.method, request.url.path, exc)
                return error_response(400, str(exc))
            except NotImplementedError as exc:
                return error_response(501, str(exc) or "Not Implemented")
            except DATABASE_UNAVAILABLE as exc:
                logger.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
                return error_response(503, unavailable_detail(exc))
            except Exception:
                logger.exception("unhandled error on %s %s", request.method, request.url.path)
                return error_response(500, "Internal Server Error")

        robyn_handler.__name__ = getattr(handler, "__name__", "handler")
        robyn_handler.__doc__ = handler.__doc__
        return robyn_handler
