"""HTTP API assembly (FastAPI)."""
