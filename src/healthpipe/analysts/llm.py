"""The shared half of every LLM analyst: prompt, parse, validate, guard, ground, account.

The model itself is a `ports.LanguageModel` (adapters: Bedrock Converse, an
OpenAI-compatible endpoint), which LLMAnalyst composes: the adapter sends the prompt,
returns the raw output and token counts, and translates its library's errors into
AnalystError. Failures propagate as AnalystError; the guarded analyst decides whether to
retry or fall back.

Every answer goes through `grounding.check_llm_output`: URLs and markup stripped, the risk
level raised to the computed one, unsafe statements (reassurance while findings or flagged
trends need review, diagnoses, medications) removed, numbers checked against the facts of
their vital.

One deadline (`deadline_seconds`, from `llm_timeout_seconds`) covers the whole exchange:
the model's `complete` runs in a worker thread and the analyst stops waiting for it when
the deadline passes, whatever the library does (an endpoint trickling one byte at a time
never trips a read timeout). The guarded analyst gives its retries the same deadline.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from healthpipe.analysts.cost import Prices, usage_with_cost
from healthpipe.analysts.grounding import MAX_DROPPED_SHARE, check_llm_output
from healthpipe.analysts.output import parse_insight_set
from healthpipe.analysts.prompt import MAX_INPUT_TOKENS, build_prompt, estimate_tokens
from healthpipe.domain.documents import Brief
from healthpipe.domain.insights import AnalystReport, Usage
from healthpipe.ports import Analyst, AnalystError, Completion, LanguageModel, Prompt

DEFAULT_DEADLINE_SECONDS = 30.0


class LLMAnalyst(Analyst):
    """An analyst whose text a LanguageModel writes; provider and model are the model's."""

    def __init__(
        self,
        language_model: LanguageModel,
        *,
        prices: Prices = (0.0, 0.0),
        max_input_tokens: int = MAX_INPUT_TOKENS,
        max_dropped_share: float = MAX_DROPPED_SHARE,
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    ) -> None:
        self.language_model = language_model
        self.provider = language_model.provider
        self.model = language_model.model
        self.deadline_seconds = deadline_seconds
        self.prices = prices
        self.max_input_tokens = max_input_tokens
        self.max_dropped_share = max_dropped_share

    def usage(
        self,
        prompt: Prompt,
        input_tokens: int | None,
        output_tokens: int | None,
        output: dict[str, Any] | str | None = None,
    ) -> Usage:
        """Usage priced from the table; estimated from the texts when not reported."""
        estimated = input_tokens is None or output_tokens is None
        if output_tokens is None:
            text = output if isinstance(output, str) else json.dumps(output or "")
            output_tokens = estimate_tokens(text) if output is not None else 0
        return usage_with_cost(
            prompt.estimated_input_tokens if input_tokens is None else input_tokens,
            output_tokens,
            self.prices,
            estimated=estimated,
        )

    def new_deadline(self) -> float:
        return time.monotonic() + self.deadline_seconds

    def attempt(
        self, brief: Brief, *, feedback: str | None = None, deadline: float | None = None
    ) -> AnalystReport:
        """One attempt before `deadline` (a time.monotonic() value); `feedback` tells the
        model why its previous answer was rejected."""
        started = time.perf_counter()
        report = self._run(brief, feedback, self.new_deadline() if deadline is None else deadline)
        report.latency_ms = int((time.perf_counter() - started) * 1000)
        return report

    def _analyze(self, brief: Brief) -> AnalystReport:
        return self._run(brief, None, self.new_deadline())

    def _complete_before(self, prompt: Prompt, deadline: float) -> Completion:
        """The model's `complete` in a worker thread; a timeout AnalystError once `deadline`
        passes. An error for a billed answer gets its `usage` priced from its `tokens`."""
        try:
            return self._call_before(prompt, deadline)
        except AnalystError as exc:
            if exc.tokens is not None:
                exc.usage = self.usage(prompt, *exc.tokens)
            raise

    def _call_before(self, prompt: Prompt, deadline: float) -> Completion:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AnalystError("timeout", "the total deadline passed before the call")
        outcome: list[Completion | BaseException] = []
        done = threading.Event()

        def call() -> None:
            try:
                outcome.append(self.language_model.complete(prompt, deadline))
            except BaseException as exc:  # handed to the waiting thread
                outcome.append(exc)
            finally:
                done.set()

        threading.Thread(target=call, name="llm-call", daemon=True).start()
        if not done.wait(remaining):
            raise AnalystError(
                "timeout",
                f"no complete answer within the total deadline of {self.deadline_seconds:g}s",
            )
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _run(self, brief: Brief, feedback: str | None, deadline: float) -> AnalystReport:
        prompt = build_prompt(
            brief.as_json(),  # the model is sent the brief's JSON
            self.language_model.output_mode,
            max_input_tokens=self.max_input_tokens,
            feedback=feedback,
        )
        completion = self._complete_before(prompt, deadline)
        usage = self.usage(
            prompt, completion.input_tokens, completion.output_tokens, completion.output
        )
        try:
            parsed = parse_insight_set(completion.output)
        except AnalystError as exc:
            exc.usage = usage
            raise
        grounding = check_llm_output(
            parsed, prompt.facts, brief, max_dropped_share=self.max_dropped_share
        )
        record = grounding.record() | {"prompt_tokens_estimate": prompt.estimated_input_tokens}
        if grounding.result is None:
            raise AnalystError(
                "ungrounded",
                grounding.problem or "unsupported numbers",
                usage=usage,
                grounding=record,
            )
        return AnalystReport(
            result=grounding.result,
            provider=self.provider,
            model=self.model,
            attempts=1,
            usage=usage,
            grounding=record,
        )
