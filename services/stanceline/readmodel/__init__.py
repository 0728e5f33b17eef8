"""The read model: stance histories and current stances over HTTP (FastAPI)."""
