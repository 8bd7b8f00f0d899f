"""Protocol v2: the thread-centric streaming protocol (`/threads/{id}/commands`, `/threads/{id}/stream/events`)."""
