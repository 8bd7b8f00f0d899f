"""Expected exceptions map to their status codes; anything else is a logged 500 that shows only a request id."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import orjson
import psycopg
import psycopg_pool
import pytest
from langgraph.errors import InvalidUpdateError

from robyn_server.errors import ApiError
from robyn_server.http import Router
from robyn_server.storage.errors import is_unavailable


class FakeRequest:
    """The parts of a Robyn request the router's wrapper reads."""

    method = "POST"
    body = b"{}"
    path_params: dict[str, str] = {}
    headers: dict[str, str] = {}

    class url:  # noqa: N801
        path = "/threads/search"


def answer(exc: BaseException) -> tuple[int, dict]:
    async def handler(req: object) -> object:
        raise exc

    router = Router(max_body_bytes=1000)
    wrapped = router._wrap(handler)
    response = asyncio.run(wrapped(FakeRequest()))
    return response.status_code, orjson.loads(response.description)


def pg_error(cls: type[psycopg.Error], sqlstate: str | None) -> psycopg.Error:
    exc = cls("boom")
    if sqlstate is not None:
        exc.sqlstate = sqlstate  # type: ignore[misc]
    return exc


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ApiError(409, "taken"), 409),
        (InvalidUpdateError("Ambiguous update, specify as_node"), 400),
        (sqlite3.OperationalError("database is locked"), 503),
        (sqlite3.OperationalError("unable to open database file"), 503),
        (psycopg_pool.PoolTimeout("couldn't get a connection after 10.00 sec"), 503),
        (pg_error(psycopg.errors.AdminShutdown, "57P01"), 503),
        (pg_error(psycopg.errors.SerializationFailure, "40001"), 503),
    ],
)
def test_expected_errors_keep_their_codes(exc: BaseException, status: int) -> None:
    code, body = answer(exc)
    assert code == status and isinstance(body["detail"], str)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("internal detail: x must be positive"),
        TypeError("internal detail: unsupported operand"),
        KeyError("internal detail"),
        sqlite3.OperationalError("no such column: internal detail"),
        pg_error(psycopg.errors.ProgramLimitExceeded, "54000"),
        pg_error(psycopg.errors.SyntaxError, "42601"),
    ],
)
def test_bugs_are_a_logged_500_with_a_request_id(exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="robyn_server"):
        code, body = answer(exc)
    assert code == 500
    assert body == {"detail": "Internal server error", "request_id": body["request_id"]}
    assert len(body["request_id"]) >= 16
    logged = [r for r in caplog.records if body["request_id"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the log, not the response


def test_unavailable_is_only_for_outages() -> None:
    assert is_unavailable(psycopg.OperationalError("connection failed"))  # no SQLSTATE: never connected
    assert not is_unavailable(pg_error(psycopg.errors.ProgramLimitExceeded, "54000"))
    assert not is_unavailable(sqlite3.OperationalError('near "SELEC": syntax error'))
    assert not is_unavailable(ValueError("database is locked"))
