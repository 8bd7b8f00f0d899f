"""Wiring the gate into the router (after CORS, before routing); a bad auth configuration stops start-up."""

from __future__ import annotations

import sys
from typing import Any

from robyn_server.auth.authorize import install_gate
from robyn_server.auth.middleware import AuthGate, build_gate
from robyn_server.config import ConfigError


def install(router: Any, ctx: Any) -> AuthGate | None:
    """Append the auth request hook to `router` (after the CORS hook). Exits with one line on a half
    configuration, like every other start-up error."""

    def route_params(path: str) -> dict[str, str]:
        for route in router.routes:
            match = route.regex.match(path)
            if match:
                return match.groupdict()
        return {}

    try:
        gate = build_gate(ctx.config, route_params=route_params)
    except ConfigError as exc:
        print(f"robyn-server: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    install_gate(gate)
    if gate is not None:
        router.request_hooks.append(gate)
        print(f"robyn-server: authentication: {gate.description}", file=sys.stderr, flush=True)
    return gate
