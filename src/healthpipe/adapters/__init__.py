"""Adapters: concrete implementations of the ports (local one-machine runtime and AWS)."""
