"""Adapters for LLM endpoints other than AWS (OpenAI-compatible servers)."""
