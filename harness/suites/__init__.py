"""Suite kinds. A new kind is one module plus one line in ``SUITE_KINDS``.

Each kind provides a pydantic config class (a subclass of
:class:`~harness.suites.base.SuiteConfig`), a ``plan(suite, provider)``
function yielding :class:`~harness.request.RequestSpec`, and optionally a
``score(row, request)`` function whose columns are added to each row, and a
``prepare(request)`` hook that completes a request just before it is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.request import RequestSpec
from harness.suites import chat, cost, latency, prompt_cache, rag_qa, structured, tool_call
from harness.suites.base import SuiteConfig

Scorer = Callable[[dict[str, Any], RequestSpec], dict[str, Any]]
Preparer = Callable[[RequestSpec], RequestSpec | dict[str, Any]]
"""Completes a request just before it is sent (from ``request.previous``, the row it
waited for); returns a row instead when the request cannot be sent (it is not)."""


@dataclass(frozen=True)
class SuiteKind:
    """A registered suite kind: its config model, its planner, and its scorer (if any)."""

    config: type[SuiteConfig]
    plan: Callable[[Any, str], Iterator[RequestSpec]]
    score: Scorer | None = None
    prepare: Preparer | None = None


SUITE_KINDS: dict[str, SuiteKind] = {
    "latency": SuiteKind(latency.LatencySuite, latency.plan),
    "rag_qa": SuiteKind(rag_qa.RagQaSuite, rag_qa.plan, rag_qa.score),
    "cost": SuiteKind(cost.CostSuite, cost.plan),
    "chat": SuiteKind(chat.ChatSuite, chat.plan, chat.score, chat.prepare),
    "prompt_cache": SuiteKind(
        prompt_cache.PromptCacheSuite, prompt_cache.plan, prompt_cache.score, prompt_cache.prepare
    ),
    "tool_call": SuiteKind(tool_call.ToolCallSuite, tool_call.plan, tool_call.score),
    "structured": SuiteKind(structured.StructuredSuite, structured.plan, structured.score),
}

__all__ = ["SUITE_KINDS", "SuiteConfig", "SuiteKind"]
