"""``kind: cost``: a fixed corpus of representative tasks, to compare what work costs.

Providers bill in their own tokens, and tokenizers differ: the same text can
be 20 % more tokens on one model than another. So besides $ per million
tokens, the summary reports $ per task and $ per 1,000 characters of input
and output, which are comparable across providers, and the blended list price
(3:1 input:output) for reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from harness.request import RequestSpec
from harness.suites.base import MAX_COUNT, MAX_TOKENS, StrictModel, SuiteConfig


class Task(StrictModel):
    """One representative input."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    prompt: str = Field(min_length=1)
    system: str | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS)


class CostSuite(SuiteConfig):
    """Every task sent ``repeats`` times to every provider."""

    kind: Literal["cost"] = "cost"
    tasks: list[Task] = Field(min_length=1)
    repeats: int = Field(default=1, ge=1, le=MAX_COUNT)


def plan(suite: CostSuite, provider: str) -> Iterator[RequestSpec]:
    """One request per task and repeat."""
    for phase in suite.phases():
        for repeat in range(suite.repeats):
            for task in suite.tasks:
                messages = [{"role": "user", "content": task.prompt}]
                system = task.system or suite.system
                if system:
                    messages.insert(0, {"role": "system", "content": system})
                yield RequestSpec(
                    suite=suite.name,
                    suite_kind=suite.kind,
                    case_id=task.id,
                    repeat=repeat,
                    provider=provider,
                    messages=messages,
                    max_tokens=task.max_tokens or suite.max_tokens,
                    load_level=phase.label,
                )
