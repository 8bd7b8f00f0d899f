"""HTTP routes: request and response shapes only; the rules live in services, storage and the run manager."""
