"""Analysts behind the Analyst port: the builtin one, and the shared logic of LLM analysts.

`builtin` (deterministic; the fallback), `prompt` (bounded, de-identified prompt), `output`
(reading an answer into an InsightSet), `grounding` (numbers must come from the facts),
`llm` (the LLM analyst: composes a `ports.LanguageModel`), `guarded` (retry/fallback
policy), `cost` (price table). The Bedrock and OpenAI-compatible adapters live under
`healthpipe.adapters`. See docs/analysts.md.
"""
