"""User objects handed to `langgraph_sdk.Auth` handlers, normalised like the reference server does.

`@auth.authenticate` may return an identity string, a dict with `identity` (and `permissions`), an object with
an `identity` attribute, or a `(permissions, user)` tuple. Handlers then see `ctx.user.identity`,
`ctx.user.display_name`, `ctx.user.is_authenticated` and dict-style access.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class ProxyUser(Mapping[str, Any]):
    """A user with `identity`, `is_authenticated`, `display_name`, the wrapped user's other fields as
    attributes and items, and JSON-friendly as a mapping (it is stored in run configs)."""

    __slots__ = ("_user",)

    def __init__(self, user: Any) -> None:
        if isinstance(user, Mapping):
            if "identity" not in user:
                raise ValueError("User must have an identity property")
            user = dict(user)
        elif not hasattr(user, "identity"):
            raise ValueError("User must have an identity property")
        object.__setattr__(self, "_user", user)

    def _get(self, name: str, default: Any = None) -> Any:
        user = self._user
        if isinstance(user, dict):
            return user.get(name, default)
        return getattr(user, name, default)

    @property
    def identity(self) -> str:
        return str(self._get("identity"))

    @property
    def is_authenticated(self) -> bool:
        return bool(self._get("is_authenticated", True))

    @property
    def display_name(self) -> str:
        return str(self._get("display_name") or self.identity)

    @property
    def permissions(self) -> list[str]:
        value = self._get("permissions", [])
        return list(value) if isinstance(value, (list, tuple)) else []

    def dict(self) -> dict[str, Any]:
        user = self._user
        if isinstance(user, dict):
            extra = user
        elif callable(getattr(user, "model_dump", None)):
            extra = user.model_dump(mode="json")
        elif callable(getattr(user, "dict", None)):
            extra = user.dict()
        else:
            extra = {}
        return {
            "identity": self.identity,
            "is_authenticated": self.is_authenticated,
            "display_name": self.display_name,
            **{k: v for k, v in extra.items() if k not in ("identity",)},
        }

    def __getattr__(self, name: str) -> Any:
        user = object.__getattribute__(self, "_user")
        if isinstance(user, dict):
            if name in user:
                return user[name]
            raise AttributeError(name)
        return getattr(user, name)

    def __getitem__(self, key: str) -> Any:
        return self.dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.dict())

    def __len__(self) -> int:
        return len(self.dict())

    def __contains__(self, key: object) -> bool:
        return key in self.dict()

    def __repr__(self) -> str:
        return f"ProxyUser(identity={self.identity!r})"

    def __reduce__(self) -> Any:
        return (self.__class__, (self._user,))


def normalize_auth_result(result: Any) -> tuple[list[str], ProxyUser]:
    """`(permissions, user)` from whatever `@auth.authenticate` returned (reference `_normalize_auth_response`)."""
    if isinstance(result, tuple):
        if len(result) != 2:
            raise ValueError(f"Expected a tuple with two elements (permissions, user), got {len(result)}")
        permissions, user = result
    elif isinstance(result, Mapping) and "permissions" in result:
        permissions, user = result["permissions"], result
    elif not isinstance(result, (str, Mapping)) and hasattr(result, "permissions"):
        permissions, user = result.permissions, result
    else:
        permissions, user = [], result
    return [str(p) for p in (permissions or [])], normalize_user(user)


def normalize_user(user: Any) -> ProxyUser:
    if isinstance(user, ProxyUser):
        return user
    if isinstance(user, str):
        return ProxyUser({"identity": user})
    if isinstance(user, Mapping) and "identity" in user:
        return ProxyUser(user)
    if hasattr(user, "identity"):
        return ProxyUser(user)
    raise ValueError(
        "Expected a user with required property: identity (str). Optional properties are: is_authenticated "
        f"(bool, defaults to True) and display_name (str, defaults to identity). Got {type(user)} instead"
    )
