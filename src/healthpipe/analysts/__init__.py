"""Analysts: implementations of the Analyst port (builtin; LLM-backed ones come alongside)."""
