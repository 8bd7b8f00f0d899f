"""HTTP errors raised by handlers and rendered as `{"detail": ...}` like the reference."""

from __future__ import annotations


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
