"""``kind: latency``: prompts sent many times, at one or several load levels, to measure speed."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.request import RequestSpec
from harness.suites.base import MAX_COUNT, MAX_TOKENS, Slo, StrictModel, SuiteConfig
from harness.suites.lengths import Length, LengthDist

__all__ = ["LatencySuite", "Slo", "SyntheticPrompts", "plan"]


class SyntheticPrompts(StrictModel):
    """Generated prompts of an exact token length (``o200k_base``), seeded.

    ``input_tokens`` is a length or a distribution (:class:`~harness.suites.lengths.LengthDist`)
    drawn once per distinct prompt; ``output_tokens`` (a length or a distribution, drawn
    per request) sets each request's ``max_tokens`` (with ``ignore_eos`` a server that
    honours it answers exactly that many).
    """

    input_tokens: Length = Field(description="tokens, or {dist: ...}")
    output_tokens: Length | None = Field(
        default=None, description="max_tokens per request (default: the suite's max_tokens)"
    )
    count: int = Field(default=8, ge=1, le=10_000, description="distinct prompts")
    seed: int = 0

    @model_validator(mode="after")
    def _bounded(self) -> SyntheticPrompts:
        for name, limit in (("input_tokens", 200_000), ("output_tokens", MAX_TOKENS)):
            value = getattr(self, name)
            top = value.upper if isinstance(value, LengthDist) else value
            if top is not None and not 1 <= top <= limit:
                raise ValueError(f"{name} can reach {top}; at most {limit}")
        return self

    def input_lengths(self) -> list[int]:
        """The length of each distinct prompt."""
        if isinstance(self.input_tokens, int):
            return [self.input_tokens] * self.count
        return self.input_tokens.sample(self.count, random.Random(f"{self.seed}:input"))

    def output_lengths(self, n: int) -> list[int] | None:
        """``max_tokens`` of requests 0..n-1 of a phase (the same in every phase), or None."""
        out = self.output_tokens
        if out is None:
            return None
        if isinstance(out, int):
            return [out] * n
        return out.sample(n, random.Random(f"{self.seed}:output"))


class LatencySuite(SuiteConfig):
    """Prompts cycled through until ``requests`` requests per provider and load level."""

    kind: Literal["latency"] = "latency"
    prompts: list[str] | None = Field(default=None, min_length=1)
    synthetic: SyntheticPrompts | None = None
    requests: int = Field(
        default=10, ge=1, le=MAX_COUNT, description="requests per provider and load level"
    )
    ignore_eos: bool = Field(default=False, description="ask servers that support it (vLLM)")
    slo: Slo | None = None

    @model_validator(mode="after")
    def _one_prompt_source(self) -> LatencySuite:
        if self.load is not None and self.load.pattern == "trace":
            if self.prompts is not None or self.synthetic is not None:
                raise ValueError(
                    "a trace makes its own prompts: leave out 'prompts' and 'synthetic'"
                )
            return self
        if (self.prompts is None) == (self.synthetic is None):
            raise ValueError("give exactly one of 'prompts' or 'synthetic'")
        return self

    def prompt_texts(self) -> list[str]:
        if self.prompts is not None:
            return self.prompts
        assert self.synthetic is not None
        from harness.cost.tokens import synthetic_prompt

        s = self.synthetic
        return [synthetic_prompt(n, s.seed + i) for i, n in enumerate(s.input_lengths())]


def plan(suite: LatencySuite, provider: str) -> Iterator[RequestSpec]:
    """For each load level: warm-up requests, then ``requests`` measured ones.

    Request ``i`` sends prompt ``i mod len(prompts)``; ``repeat`` counts the cycles.
    """
    if suite.load is not None and suite.load.pattern == "trace":
        from harness.suites.trace import plan_trace

        for phase in suite.phases():
            yield from plan_trace(suite, provider, phase, suite.load)
        return
    prompts = suite.prompt_texts()
    n = len(prompts)
    extra: dict[str, Any] = {"extra_body": {"ignore_eos": True}} if suite.ignore_eos else {}
    for phase in suite.phases():
        total = phase.warmup + suite.requests
        lengths = suite.synthetic.output_lengths(total) if suite.synthetic else None
        for i in range(total):
            messages = [{"role": "user", "content": prompts[i % n]}]
            if suite.system:
                messages.insert(0, {"role": "system", "content": suite.system})
            yield RequestSpec(
                suite=suite.name,
                suite_kind=suite.kind,
                case_id=f"prompt-{i % n}",
                repeat=i // n,
                provider=provider,
                messages=messages,
                max_tokens=suite.max_tokens if lengths is None else lengths[i],
                extra=extra,
                load_level=phase.label,
                warmup=i < phase.warmup,
            )
