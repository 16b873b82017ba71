"""The metrics :func:`harness.report.history.history` computes for every run in one pass.

``history`` of a year of nightly runs needs one number per (run, suite, load level,
provider), not each run's whole summary. For the metrics here that number is computed
from a few columns of all the runs at once: the rows are grouped once (run id being part
of the key, see :func:`harness.report.groups.group_positions`) and each group's values
are a slice of one column, in the rows' order, so each value is the very computation
:func:`harness.report.summary.summarize` does (``np.percentile`` of the same values, a
pandas sum or mean of the same values in the same order), to the last bit. Any other
metric is left to the summary of each run.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from harness.report.groups import Positions, group_positions
from harness.report.summary import GROUP, METRICS, PERCENTILES, provider_label

__all__ = ["FAST_METRICS", "fast_columns", "fast_series"]

# Summary column -> (source column, scale, percentile) for the latency percentiles.
_PERCENTILE_METRICS: dict[str, tuple[str, float, int]] = {
    f"{name}_p{p}{unit}": (column, scale, p)
    for name, (column, scale, unit) in METRICS.items()
    for p in PERCENTILES
}
_COUNTS = ("requests", "errors", "error_rate", "rate_limited")
_COSTS = ("cost_usd", "usd_per_1k_requests")
FAST_METRICS = frozenset(_PERCENTILE_METRICS) | set(_COUNTS) | set(_COSTS)
"""Summary columns whose history is computed in one pass over every run."""
_KEYS = ("run_id", *GROUP)
_BASE = (*_KEYS, "started_at", "simulated", "warmup", "status")


def fast_columns(metric: str) -> tuple[str, ...]:
    """The row columns the one-pass history of ``metric`` reads."""
    if metric in _PERCENTILE_METRICS:
        return (*_BASE, "from_cache", _PERCENTILE_METRICS[metric][0])
    if metric in _COUNTS:
        return (*_BASE, "error_type")
    return (*_BASE, "cost_usd")


def fast_series(rows: pd.DataFrame, metric: str) -> list[pd.DataFrame] | None:
    """Per run in ``rows`` (in order of first appearance), ``run_id, started_at,
    provider, suite, load_level, value`` of ``metric`` for each line of its summary (in
    the summary's order); None when ``metric`` is not one of :data:`FAST_METRICS`, the
    rows lack (or type differently) a column it needs, or no row makes a summary line:
    then summarise each run.
    """
    if metric not in FAST_METRICS or not set(fast_columns(metric)) - {"from_cache"} <= set(rows):
        return None
    source = _PERCENTILE_METRICS[metric][0] if metric in _PERCENTILE_METRICS else None
    if source is not None and rows[source].dtype != np.float64:
        return None
    if metric in _COSTS and rows["cost_usd"].dtype != np.float64:
        return None
    kept = (rows["warmup"].fillna(False).astype(bool) == False).to_numpy()  # noqa: E712
    keyed = rows[[*_KEYS, "simulated"]].assign(load_level=rows["load_level"].fillna("-"))
    groups = group_positions(keyed, _KEYS, kept)
    if not groups:
        return None  # no summary line at all: the summaries say which metrics exist
    value = _line_value(metric, rows)
    simulated = rows["simulated"].to_numpy()
    values = [value(positions) for _, positions in groups]
    lines = pd.DataFrame(
        {
            "run": [key[0] for key, _ in groups],
            "suite": [key[1] for key, _ in groups],
            "load_level": [key[2] for key, _ in groups],
            "raw": [key[3] for key, _ in groups],
            "provider": [
                provider_label(str(key[3]), simulated[positions[0]]) for key, positions in groups
            ],
            "value": pd.Series(values, dtype=object),
        }
    )
    # Runs in order of first appearance, each run's lines as summarize sorts them, and
    # each run a piece of its own as history builds it (so the columns' types match).
    lines["order"] = pd.factorize(lines["run"])[0]
    lines = lines.sort_values(["order", "suite", "load_level", "raw"], kind="stable")
    started = rows.groupby("run_id", sort=False)["started_at"].min()
    if not started.isna().any():
        # One frame: each run's piece would have the start times' own type.
        return [
            pd.DataFrame(
                {
                    "run_id": [str(r) for r in lines["run"]],
                    "started_at": started.loc[lines["run"]].array,
                    "provider": lines["provider"].astype(str).to_numpy(),
                    "suite": lines["suite"].astype(str).to_numpy(),
                    "load_level": lines["load_level"].astype(str).to_numpy(),
                    "value": pd.to_numeric(lines["value"], errors="coerce").to_numpy(float),
                }
            )
        ]
    # A run without a start time makes the concatenated column one of objects.
    return [
        pd.DataFrame(
            {
                "run_id": str(run_id),
                "started_at": started.loc[run_id],
                "provider": part["provider"].astype(str).to_numpy(),
                "suite": part["suite"].astype(str).to_numpy(),
                "load_level": part["load_level"].astype(str).to_numpy(),
                "value": pd.to_numeric(part["value"], errors="coerce").to_numpy(float),
            }
        )
        for run_id, part in lines.groupby("run", sort=False)
    ]


def _line_value(metric: str, rows: pd.DataFrame) -> Callable[[Positions], float | None]:
    """A summary line's ``metric`` from its rows' positions, as
    :func:`harness.report.summary._summarize` computes it (from the same values)."""
    ok = (rows["status"] == "ok").to_numpy(dtype=bool)
    if metric in _PERCENTILE_METRICS:
        column, scale, p = _PERCENTILE_METRICS[metric]
        values = rows[column].to_numpy(dtype=float)
        # Measured (no row from the response cache: it was not), and finite: an
        # infinite duration measured nothing, a missing one is left out.
        usable = ok & np.isfinite(values)
        if "from_cache" in rows:
            usable &= ~rows["from_cache"].fillna(False).astype(bool).to_numpy(dtype=bool)

        def percentile(positions: Positions) -> float | None:
            scaled = values[positions[usable[positions]]] * scale
            return float(np.percentile(scaled, p)) if len(scaled) else None

        return percentile
    if metric in _COUNTS:
        limited = (rows["error_type"] == "rate_limited").to_numpy(dtype=bool)

        def count(positions: Positions) -> float | None:
            n = positions.size
            if metric == "requests":
                return n
            if metric == "rate_limited":
                return int(limited[positions].sum())
            errors = int(n - ok[positions].sum())
            return errors if metric == "errors" else errors / n

        return count
    costs = rows["cost_usd"].to_numpy(dtype=float)

    def cost(positions: Positions) -> float | None:
        # A request without a price makes the total unknown, not smaller. Summed and
        # averaged by pandas, as the summary does, over the same values in order.
        paid = pd.Series(costs[positions[ok[positions]]])
        if not (len(paid) > 0 and bool(paid.notna().all())):
            return None
        return float(paid.sum()) if metric == "cost_usd" else float(paid.mean()) * 1000

    return cost
