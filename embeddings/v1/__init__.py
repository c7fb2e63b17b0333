"""The OpenAI-compatible API at /v1: embeddings and models (see api.py)."""
