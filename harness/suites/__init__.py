"""Suite kinds. A new kind is one module plus one line in ``SUITE_KINDS``.

Each kind provides a pydantic config class (a subclass of
:class:`~harness.suites.base.SuiteConfig`) and a ``plan(suite, provider)``
function yielding :class:`~harness.suites.base.RequestSpec`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.suites import latency
from harness.suites.base import RequestSpec, SuiteConfig


@dataclass(frozen=True)
class SuiteKind:
    """A registered suite kind: its config model and its planner."""

    config: type[SuiteConfig]
    plan: Callable[[Any, str], Iterator[RequestSpec]]


SUITE_KINDS: dict[str, SuiteKind] = {
    "latency": SuiteKind(latency.LatencySuite, latency.plan),
}

__all__ = ["SUITE_KINDS", "RequestSpec", "SuiteConfig", "SuiteKind"]
