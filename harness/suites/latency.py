"""``kind: latency``: the same prompts sent many times, to measure speed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from harness.suites.base import RequestSpec, SuiteConfig


class LatencySuite(SuiteConfig):
    """A list of prompts cycled through until ``requests`` requests per provider."""

    kind: Literal["latency"] = "latency"
    prompts: list[str] = Field(min_length=1)
    requests: int = Field(default=10, ge=1, description="requests per provider")


def plan(suite: LatencySuite, provider: str) -> Iterator[RequestSpec]:
    """Request ``i`` sends prompt ``i mod len(prompts)``; ``repeat`` counts the cycles."""
    n = len(suite.prompts)
    for i in range(suite.requests):
        messages = [{"role": "user", "content": suite.prompts[i % n]}]
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
        )
