"""Differential testing against the official server (`langgraph dev`, pinned in scripts/setup_reference.sh)."""
