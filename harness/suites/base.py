"""What every suite kind shares: its config base class and the request it plans."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    """Base of every user-facing config model: unknown keys are errors, not ignored."""

    model_config = ConfigDict(extra="forbid")


class SuiteConfig(StrictModel):
    """Keys every suite has; each kind adds its own."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$", description="label in every table")
    kind: str
    max_tokens: int = Field(default=256, ge=1)
    system: str | None = Field(default=None, description="optional system message")


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
