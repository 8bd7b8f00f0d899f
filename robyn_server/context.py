"""The objects every route needs, built once at start-up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from robyn_server.config import ServerConfig, Settings
from robyn_server.graphs import GraphRegistry
from robyn_server.runs.manager import RunManager
from robyn_server.storage.base import Storage


@dataclass
class ServerContext:
    config: ServerConfig
    settings: Settings
    storage: Storage
    registry: GraphRegistry
    runs: RunManager
    api_url: str
    custom_app: Any = None  # the user's `http.app` bridge (custom_app.CustomApp), if configured
    # run on the serving loop at start-up, after storage setup (the custom app's lifespan, the MCP transport)
    startup_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
