"""The leaf types every stage shares: the request a suite plans, the row a request becomes.

Nothing here imports the rest of the harness, so the scheduler, the transports,
the cache and the budget can all speak of requests without importing a suite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]
"""One stored request: column name → value (see :data:`harness.store.schema.SCHEMA`)."""


@dataclass(frozen=True)
class RequestSpec:
    """One request of the plan: which suite case goes to which provider, and what to send."""

    suite: str
    suite_kind: str
    case_id: str
    repeat: int
    provider: str
    messages: list[dict[str, Any]]
    max_tokens: int
    extra: dict[str, Any] = field(default_factory=dict)
    load_level: str | None = None
    warmup: bool = False
    meta: dict[str, Any] = field(default_factory=dict)  # for scoring; never sent
    after: str | None = None
    """The ``case_id`` of the request (same suite, provider, load level and repeat) whose
    row this one needs before it is sent: a conversation's earlier turn, a cache's cold
    request. The scheduler sends it only once that row exists (see ``run.chains``)."""
    previous: Row | None = None
    """That row, once it exists; the suite's ``prepare`` hook completes the request from it."""


def request_identity(request: RequestSpec) -> dict[str, Any]:
    """The columns that say which planned request a row answers."""
    return {
        "suite": request.suite,
        "suite_kind": request.suite_kind,
        "case_id": request.case_id,
        "repeat": request.repeat,
        "load_level": request.load_level,
        "warmup": request.warmup,
        "provider": request.provider,
        "max_tokens": request.max_tokens,
    }
