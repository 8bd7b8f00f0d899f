"""Unit tests of the identity context, filters and user normalisation (no server)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from robyn_server.auth import AuthUser, bind, bind_iterator, get_current_user, user_config
from robyn_server.auth.context import _thread_slots, set_current_user
from robyn_server.auth.filters import matches, merge_metadata, to_containment
from robyn_server.auth.users import normalize_auth_result
from robyn_server.errors import ApiError

ROOT = Path(__file__).resolve().parent.parent


def _in_fresh_context(fn, *args):
    return contextvars.Context().run(fn, *args)


def test_nothing_is_set_outside_a_request() -> None:
    assert _in_fresh_context(get_current_user) is None
    assert threading.Thread is not None and _thread_slots == {}


def test_context_isolation_between_concurrent_tasks() -> None:
    async def one(i: int) -> bool:
        set_current_user(AuthUser(f"u{i}"))
        await asyncio.sleep(0.001 * (i % 7))
        user = get_current_user()
        return user is not None and user.identity == f"u{i}"

    async def main() -> list[bool]:
        return await asyncio.gather(*(asyncio.create_task(one(i)) for i in range(300)))

    assert all(_in_fresh_context(asyncio.run, main()))


def test_bind_carries_the_identity_into_threads_and_clears_it() -> None:
    def make(i: int):
        set_current_user(AuthUser(f"t{i}"))
        return bind(lambda: (get_current_user() or AuthUser("none")).identity)

    bound = [_in_fresh_context(make, i) for i in range(100)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda f: f(), bound))
        leftovers = list(pool.map(lambda _: _in_fresh_context(get_current_user), range(16)))
    assert results == [f"t{i}" for i in range(100)]
    assert leftovers == [None] * 16
    assert _thread_slots == {}


def test_bind_iterator_serves_sse_bodies_from_other_threads() -> None:
    def body():
        for _ in range(3):
            user = get_current_user()
            yield user.identity if user else None

    def make(i: int):
        set_current_user(AuthUser(f"s{i}"))
        return bind_iterator(body())

    iterators = [_in_fresh_context(make, i) for i in range(50)]

    def drain(it) -> list:
        out = list(it)
        out.append(_in_fresh_context(get_current_user))  # nothing left behind on this thread
        return out

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(drain, iterators))
    assert results == [[f"s{i}"] * 3 + [None] for i in range(50)]
    assert _thread_slots == {}


def test_no_module_level_thread_local_in_the_server() -> None:
    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "robyn_server").rglob("*.py") if "threading.local(" in p.read_text()
    ]
    assert offenders == []


def test_user_config_injection() -> None:
    user = AuthUser("alice", ("read",), {"identity": "alice"}, "tok")
    assert user_config(user) == {
        "langgraph_auth_user": {"identity": "alice"},
        "langgraph_auth_user_id": "alice",
        "langgraph_auth_permissions": ["read"],
        "user_id": "alice",
    }  # the token is not stored with the run; robyn_server.runs.credentials adds it at execution
    assert user_config(None) == {}
    assert "tok" not in repr(user)


@pytest.mark.parametrize(
    ("result", "identity", "permissions"),
    [
        ("alice", "alice", []),
        ({"identity": "bob", "permissions": ["w"]}, "bob", ["w"]),
        ((["p"], {"identity": "carol"}), "carol", ["p"]),
    ],
)
def test_authenticate_results_are_normalised(result, identity, permissions) -> None:
    perms, user = normalize_auth_result(result)
    assert (user.identity, perms) == (identity, permissions)
    assert user["identity"] == identity and user.display_name == identity and user.is_authenticated
    assert dict(user)["identity"] == identity


def test_filters_match_like_the_reference() -> None:
    md = {"owner": "a", "tags": ["x", "y"], "n": 1}
    assert matches(md, {"owner": "a"})
    assert not matches(md, {"owner": "b"})
    assert matches(md, {"owner": {"$eq": "a"}})
    assert matches(md, {"tags": {"$contains": "x"}})
    assert matches(md, {"tags": {"$contains": ["x", "y"]}})
    assert not matches(md, {"tags": {"$contains": "z"}})
    assert matches(md, {"$or": [{"owner": "b"}, {"n": 1}]})
    assert not matches(md, {"$and": [{"owner": "a"}, {"n": 2}]})
    assert not matches({}, {"owner": "a"})
    with pytest.raises(ApiError):
        matches(md, {"$or": [{"owner": "a"}]})
    with pytest.raises(ApiError):
        matches(md, {"$or": [{"$or": [{"$or": [{"a": 1}, {"b": 1}]}, {"c": 1}]}, {"d": 1}]})


def test_filters_become_storage_containment_when_they_can() -> None:
    assert to_containment({"owner": "a"}) == {"owner": "a"}
    assert to_containment({"owner": {"$eq": "a"}, "tags": {"$contains": "x"}}) == {"owner": "a", "tags": ["x"]}
    assert to_containment({"$and": [{"owner": "a"}, {"k": 1}]}) == {"owner": "a", "k": 1}
    assert to_containment({"$or": [{"owner": "a"}, {"k": 1}]}) is None
    assert merge_metadata({"topic": "t"}, {"owner": "a"}) == ({"topic": "t", "owner": "a"}, False)
    assert merge_metadata({"owner": "b"}, {"owner": "a"}) == ({"owner": "b"}, True)  # conflict: match in Python
    assert merge_metadata(None, None) == (None, False)


def test_verified_tokens_are_cached_but_expire() -> None:
    import time

    from robyn_server.auth.tokens import TokenError, TokenVerifier, VerifierSettings
    from tests.test_auth_support import SECRET, hs256

    verifier = TokenVerifier(VerifierSettings(secret=SECRET, jwks_url=None, audience=["authenticated"], issuer=None))
    token = hs256("cache", exp=int(time.time()) + 2)
    assert asyncio.run(verifier.verify(token))["sub"] == "cache"
    assert token in verifier._verified
    assert asyncio.run(verifier.verify(token))["sub"] == "cache"
    verifier._verified[token] = {**verifier._verified[token], "exp": time.time() - 1}
    with pytest.raises(TokenError, match="expired"):
        asyncio.run(verifier.verify(token))
    with pytest.raises(TokenError):
        asyncio.run(verifier.verify(hs256("cache", secret="x" * 40)))
    assert len(verifier._verified) == 0
