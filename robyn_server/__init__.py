"""Robyn-based, LangGraph-compatible agent server."""

__version__ = "0.1.0"
