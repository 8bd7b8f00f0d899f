"""Differences from the official server kept on purpose, each with its reason.

Keys are glob patterns (fnmatch) over `<label> <aspect><path>` as tests/differential/compare.py names them, e.g.
`threads.get body/config`. tests/test_differential.py fails on a difference no pattern covers, and on a pattern
that covers nothing (so this list stays true). test-artifacts/differential.txt lists every difference found
with the reason that covers it.
"""

from __future__ import annotations

_ROBYN_STREAMING = (
    "Robyn's Rust layer adds `cache-control: no-cache, no-store, must-revalidate`, `pragma: no-cache`, "
    "`expires: 0` and `x-accel-buffering: no` to every streamed response (SSE and the padded JSON of /wait, /join "
    "and cancel?wait=1) and handlers cannot remove them; matching the reference needs a response rewrite in the "
    "request guard"
)

KEPT: dict[str, str] = {
    # ------------------------------------------------------------------ who answers
    "* body/*langgraph_api_version": "this server's own version, not langgraph-api's",
    "* body/*langgraph_plan": "the reference's dev server says `enterprise`; this server is self-hosted",
    "* body/*lc_versions/langchain": "the test environment has the `langchain` package (tools agent) and the "
    "reference's virtual environment does not; LangChain reports the versions it finds",
    "mcp.initialize body/result/capabilities/experimental": "the `mcp` package version this server is built on "
    "announces an empty `experimental` capability",
    "a2a.card body/capabilities/extensions": "the reference announces its history-scope extension "
    "(`LangGraph-A2A-History-Scope` header), which this server does not implement",
    # ------------------------------------------------------------------ headers
    "* headers/cache-control": _ROBYN_STREAMING,
    "* headers/pragma": _ROBYN_STREAMING,
    "* headers/expires": _ROBYN_STREAMING,
    "* headers/x-accel-buffering": _ROBYN_STREAMING,
    # ------------------------------------------------------------------ validation messages
    "*_invalid body/detail": "request bodies are checked with pydantic models, not the reference's jsonschema "
    "validator: same 422 status, different wording",
    "runs.invalid_stream_mode body/detail": "pydantic's wording of the same 422",
    "runs.update_state_busy body/detail": "the in-flight runs are named by id instead of the reference's Python "
    "repr of whole run records",
    # ------------------------------------------------------------------ features this server has beyond 0.16.7
    "modes.tools *": "`tools` is a stream mode of langgraph-api 0.17 (tool-started/finished/error events); 0.16.7 "
    "refuses it on the classic run stream",
    "runs.get_cancelled body/cancel_reason": "the 0.17 `cancel_reason` run field",
    "threads.prune_keep_latest *": "`keep_latest` pruning is served on every backend; the reference's in-memory "
    "runtime refuses it",
    "threads.history_after_prune *": "follows from keep_latest being served: one checkpoint is left, without parent",
    # ------------------------------------------------------------------ reference quirks not copied
    "modes.stateless *": "under a custom auth module that filters threads, the reference loses the temporary "
    "thread of a stateless run (the run fails with 404 'Thread not found'); this server runs it",
    "* body/*kwargs/config/metadata/*": "a run's stored kwargs carry its config metadata from creation on; the "
    "reference fills that in when the run starts",
    "* body/*kwargs/config/configurable/__pregel_node_finished": "a LangGraph-internal key the reference leaks "
    "into the stored run; this server never stores it",
    "runs.cancel body/*": "cancel with wait=1 answers the values the run had reached; the reference answers {}",
    "threads.copy body/values": "the copy is answered with the values it was given; the reference leaves "
    "`values` out of this answer (a GET shows them)",
    "travel.state_at body/checkpoint/checkpoint_ns": "the state at a checkpoint names its namespace (''), like "
    "the current state does; the reference leaves it out there",
    "travel.state_checkpoint body/checkpoint/checkpoint_ns": "as travel.state_at",
    "travel.*_after_fork body/*metadata/checkpoint_id": "a state update from an older checkpoint: the reference "
    "copies the request's configurable (base checkpoint_id, user_id) into the new checkpoint's metadata",
    "travel.*_after_fork body/*metadata/user_id": "as the checkpoint_id above",
    "modes.events body/*:events/data/*/messages/0/id": "events-mode payloads are serialised as each event happens; "
    "the reference serialises them later, after add_messages has given the tool's ToolMessage an id in place",
}
