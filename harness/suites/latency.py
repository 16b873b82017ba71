"""``kind: latency``: prompts sent many times, at one or several load levels, to measure speed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.request import RequestSpec
from harness.suites.base import MAX_COUNT, Slo, StrictModel, SuiteConfig

__all__ = ["LatencySuite", "Slo", "SyntheticPrompts", "plan"]


class SyntheticPrompts(StrictModel):
    """Generated prompts of an exact token length (``o200k_base``), seeded."""

    input_tokens: int = Field(ge=1, le=200_000)
    count: int = Field(default=8, ge=1, le=10_000, description="distinct prompts")
    seed: int = 0


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
        if (self.prompts is None) == (self.synthetic is None):
            raise ValueError("give exactly one of 'prompts' or 'synthetic'")
        return self

    def prompt_texts(self) -> list[str]:
        if self.prompts is not None:
            return self.prompts
        assert self.synthetic is not None
        from harness.cost.tokens import synthetic_prompt

        s = self.synthetic
        return [synthetic_prompt(s.input_tokens, s.seed + i) for i in range(s.count)]


def plan(suite: LatencySuite, provider: str) -> Iterator[RequestSpec]:
    """For each load level: warm-up requests, then ``requests`` measured ones.

    Request ``i`` sends prompt ``i mod len(prompts)``; ``repeat`` counts the cycles.
    """
    prompts = suite.prompt_texts()
    n = len(prompts)
    extra: dict[str, Any] = {"extra_body": {"ignore_eos": True}} if suite.ignore_eos else {}
    for phase in suite.phases():
        total = phase.warmup + suite.requests
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
                max_tokens=suite.max_tokens,
                extra=extra,
                load_level=phase.label,
                warmup=i < phase.warmup,
            )
