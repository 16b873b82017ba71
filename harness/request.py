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
