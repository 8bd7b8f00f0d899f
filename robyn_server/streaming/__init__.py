"""SSE framing, per-run event logs and the mapping of LangGraph stream chunks to reference events."""
