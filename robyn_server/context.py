"""The objects every route needs, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
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
