"""What litellm's price table says about a model: prices, limits, capabilities, deprecation.

Pure functions over ``litellm.model_cost`` (passed in; this module never imports litellm).
Models are found with :func:`harness.cost.pricing.resolve_table_key`, the same resolution that
prices them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from harness.cost.pricing import PER_MTOK, resolve_table_key

AuditStatus = Literal["ok", "deprecating", "deprecated", "unknown"]


@dataclass
class ModelInfo:
    """One model as litellm's table describes it; ``known`` is False when it has no entry.

    Prices are USD per million tokens (None: not in the table). ``capabilities`` are the
    table's ``supports_*`` keys whose value is true, sorted.
    """

    model: str
    table_key: str | None = None
    provider: str | None = None
    mode: str | None = None
    input_per_mtok: float | None = None
    output_per_mtok: float | None = None
    cached_input_per_mtok: float | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    capabilities: list[str] = field(default_factory=list)
    deprecation_date: date | None = None
    successor_model: str | None = None
    known: bool = False


@dataclass(frozen=True)
class AuditRow:
    """The deprecation status of one model.

    ``days_left`` is ``deprecation_date - today`` in days (negative once past), None
    without a date.
    """

    model: str
    status: AuditStatus
    table_key: str | None
    deprecation_date: date | None
    days_left: int | None
    successor_model: str | None


def _per_mtok(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # 12 significant digits: 1.5e-07 * 1e6 prints as 0.15, not 0.15000000000000002.
    return float(f"{value * PER_MTOK:.12g}")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _date(value: Any) -> date | None:
    """A ``YYYY-MM-DD`` deprecation date; anything else (missing, malformed) is None."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def lookup(model: str, model_cost: Mapping[str, Any]) -> ModelInfo:
    """Describe ``model`` from litellm's table (``known=False`` and empty fields if absent)."""
    key = resolve_table_key(model, model_cost)
    if key is None:
        return ModelInfo(model=model)
    entry: Mapping[str, Any] = model_cost[key]
    return ModelInfo(
        model=model,
        table_key=key,
        provider=_str(entry.get("litellm_provider")),
        mode=_str(entry.get("mode")),
        input_per_mtok=_per_mtok(entry.get("input_cost_per_token")),
        output_per_mtok=_per_mtok(entry.get("output_cost_per_token")),
        cached_input_per_mtok=_per_mtok(entry.get("cache_read_input_token_cost")),
        max_input_tokens=_int(entry.get("max_input_tokens")),
        max_output_tokens=_int(entry.get("max_output_tokens")),
        capabilities=sorted(k for k, v in entry.items() if k.startswith("supports_") and v is True),
        deprecation_date=_date(entry.get("deprecation_date")),
        successor_model=_str(entry.get("successor_model")),
        known=True,
    )


def audit(
    models: Sequence[str],
    model_cost: Mapping[str, Any],
    *,
    today: date,
    within_days: int | None,
) -> list[AuditRow]:
    """One row per model (in the given order) with its deprecation status on ``today``.

    * ``unknown``: not in the table;
    * ``deprecated``: deprecation date ≤ today;
    * ``deprecating``: deprecation date within ``within_days`` days from today
      (``within_days=None``: any announced future date; ``0``: never);
    * ``ok``: otherwise (no date, or a date further away).
    """
    if within_days is not None and within_days < 0:
        raise ValueError("within_days must be >= 0 (or None for any announced date)")
    rows: list[AuditRow] = []
    for model in models:
        info = lookup(model, model_cost)
        days_left = None
        if info.deprecation_date is not None:
            days_left = (info.deprecation_date - today).days
        status: AuditStatus
        if not info.known:
            status = "unknown"
        elif days_left is None:
            status = "ok"
        elif days_left <= 0:
            status = "deprecated"
        elif within_days is None or days_left <= within_days:
            status = "deprecating"
        else:
            status = "ok"
        rows.append(
            AuditRow(
                model=model,
                status=status,
                table_key=info.table_key,
                deprecation_date=info.deprecation_date,
                days_left=days_left,
                successor_model=info.successor_model,
            )
        )
    return rows


__all__ = ["AuditRow", "AuditStatus", "ModelInfo", "audit", "lookup"]
