"""Persistence for assistants, threads, runs and the LangGraph checkpointer/store, behind one interface."""

from robyn_server.storage.base import Storage
from robyn_server.storage.memory import MemoryStorage

__all__ = ["MemoryStorage", "Storage"]
