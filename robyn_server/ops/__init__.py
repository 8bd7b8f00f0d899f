"""Operations: request ids, structured logs, metrics, readiness and traces, hooked into the router and the run
manager with a few calls so the rest of the server stays unaware of them."""
