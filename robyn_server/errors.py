"""HTTP errors raised by handlers and rendered as `{"detail": ...}` like the reference."""

from __future__ import annotations

import logging
import uuid

logger = logging.getLogger("robyn_server")


class ApiError(Exception):
    """An error with an HTTP status code and a client-facing detail message."""

    def __init__(self, status_code: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers or {}


def not_found(detail: str = "Not Found") -> ApiError:
    return ApiError(404, detail)


def conflict(detail: str) -> ApiError:
    return ApiError(409, detail)


def bad_request(detail: str) -> ApiError:
    return ApiError(400, detail)


def unprocessable(detail: str) -> ApiError:
    return ApiError(422, detail)


INTERNAL_ERROR_DETAIL = "Internal server error"


def internal_error_body(where: str, exc: BaseException | None = None, request_id: str | None = None) -> dict[str, str]:
    """Log an unexpected failure (a bug) with its traceback under a request id and return the 500 body that
    names only that id. `request_id` is the request's own id when it has one; else one is made here."""
    request_id = request_id or uuid.uuid4().hex
    logger.error("internal error on %s [request_id=%s]", where, request_id, exc_info=exc)
    return {"detail": INTERNAL_ERROR_DETAIL, "request_id": request_id}
