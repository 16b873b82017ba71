"""Run A (baseline) against run B per suite, provider and load level, with a significance
test per metric and a ``regression`` flag (:func:`diff_runs`). Pure functions over rows."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from harness.report.compare import (
    MEASURED_COLUMNS,
    NOISE_FLOORS,
    Comparison,
    RowArrays,
    cost_comparison,
    error_rates,
    independent_percentiles,
    measured_rows,
    quality_comparison,
)

DIFF_METRICS = (
    "ttft_p50_ms",
    "ttft_p95_ms",
    "e2e_p50_ms",
    "itl_p50_ms",
    "error_rate",
    "exact_match_abstain",
    "usd_per_1k_requests",
)


# Latency and cost thresholds are relative to A's value (0.10 = 10 % worse); error rate
# and quality ones are absolute, in the metric's units (0.02 = two percentage points),
# because a relative change of a rate near 0 is meaningless.
DEFAULT_THRESHOLDS: Mapping[str, float] = {
    "ttft_p50_ms": 0.10,
    "ttft_p95_ms": 0.10,
    "e2e_p50_ms": 0.10,
    "itl_p50_ms": 0.10,
    "error_rate": 0.01,
    "exact_match_abstain": 0.02,
    "usd_per_1k_requests": 0.10,
}


RELATIVE_THRESHOLDS = frozenset(
    {"ttft_p50_ms", "ttft_p95_ms", "e2e_p50_ms", "itl_p50_ms", "usd_per_1k_requests"}
)


_HIGHER_IS_BETTER = frozenset({"exact_match_abstain"})


# Latency metric → (row column, percentile); values are reported in milliseconds.
_LATENCY: Mapping[str, tuple[str, float]] = {
    "ttft_p50_ms": ("ttft_s", 50.0),
    "ttft_p95_ms": ("ttft_s", 95.0),
    "e2e_p50_ms": ("e2e_s", 50.0),
    "itl_p50_ms": ("itl_s", 50.0),
}


_LATENCY_BY_COLUMN: Mapping[str, tuple[str, ...]] = {
    column: tuple(m for m, (c, _) in _LATENCY.items() if c == column)
    for column in dict.fromkeys(c for c, _ in _LATENCY.values())
}


DIFF_ROW_COLUMNS = (*MEASURED_COLUMNS, "exact_match_abstain")
"""The row columns :func:`diff_runs` reads (``harness diff`` reads only these)."""


_DIFF_COLUMNS = (
    "suite",
    "load_level",
    "provider",
    "metric",
    "a",
    "b",
    "change",
    "change_rel",
    "ci_low",
    "ci_high",
    "p_value",
    "test",
    "n_a",
    "n_b",
    "significant",
    "worse",
    "threshold",
    "regression",
)


def _check_thresholds(thresholds: Mapping[str, float] | None) -> dict[str, float]:
    limits = dict(DEFAULT_THRESHOLDS)
    for metric, value in (thresholds or {}).items():
        if metric not in DEFAULT_THRESHOLDS:
            raise ValueError(
                f"unknown threshold metric {metric!r}; use one of {', '.join(DIFF_METRICS)}"
            )
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"threshold {metric}={value!r} must be a number >= 0")
        limits[metric] = float(value)
    return limits


def _worse_by(metric: str, a: float, b: float) -> tuple[float, float]:
    """How much B is worse than A: (absolute, relative to |A|); negative when better."""
    change = b - a if metric not in _HIGHER_IS_BETTER else a - b
    if a != 0:
        relative = change / abs(a)
    else:
        relative = math.inf if change > 0 else (-math.inf if change < 0 else 0.0)
    return change, relative


def diff_runs(
    rows_a: pd.DataFrame,
    rows_b: pd.DataFrame,
    thresholds: Mapping[str, float] | None = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    metrics: Sequence[str] = DIFF_METRICS,
) -> pd.DataFrame:
    """Compare run B with run A (the baseline) per (suite, load level, provider) and metric.

    Metrics are :data:`DIFF_METRICS` (or those of them in ``metrics``: each is computed
    as it is among all of them). For each: ``a``, ``b``, ``change`` (= b − a),
    ``change_rel`` (= change / |a|), ``ci_low``/``ci_high`` (interval of b − a at
    ``confidence``), ``p_value``, the ``test`` used, ``n_a``/``n_b``, then
    ``significant``, ``worse`` and ``regression`` = significant and worse and beyond the
    metric's threshold (strictly).

    Tests:

    * latency percentiles (successful requests): each run's values are resampled
      independently (whole cases when cases have repeats) and the difference of the
      percentiles recomputed; significant when the percentile interval excludes 0;
    * ``exact_match_abstain``: one value per case (the mean over its repeats), paired on
      the case id; ``a``/``b`` are the means over the shared cases and ``n_a``/``n_b``
      count cases. Paired bootstrap of the mean difference and the exact sign test
      (McNemar's exact test for 0/1 scores) must agree (as in ``paired_quality``); its
      ``p_value`` is the exact one;
    * ``error_rate``: Fisher's exact test (``p < 1 − confidence``), with Newcombe's score
      interval of the difference;
    * ``usd_per_1k_requests``: bootstrap of the mean cost per successful request; "no
      price" (not tested) when any successful request of either run is unpriced.

    ``thresholds`` override :data:`DEFAULT_THRESHOLDS` per metric: latency and cost ones
    are relative to A (0.10 = B more than 10 % worse), error rate and quality ones are
    absolute (0.02 = 2 points). A latency change no larger than the metric's noise
    floor (:data:`NOISE_FLOORS`: 5 ms for TTFT and E2E, 2 ms for ITL) is never a
    regression. Each metric is tested on its own at ``confidence``,
    without a multiple-comparison correction; the thresholds keep small, real but
    unimportant changes from being called regressions.

    Groups present in only one run are listed in ``attrs["notes"]``; metrics with no
    value in either run (e.g. quality in a latency suite) are left out. Deterministic
    for a given ``seed``.

    Raises:
        ValueError: for an unknown threshold metric or a negative threshold.
    """
    limits = _check_thresholds(thresholds)
    wanted = set(metrics)
    if wanted - set(DIFF_METRICS):
        raise ValueError(f"unknown diff metrics: {', '.join(sorted(wanted - set(DIFF_METRICS)))}")
    keys = ["suite", "load_level", "label"]
    # Each run's rows as numpy columns and index arrays per group: a group is never a
    # copy of a million-row frame (the statistics see the same values in the same order).
    arrays_a, arrays_b = RowArrays(measured_rows(rows_a)), RowArrays(measured_rows(rows_b))
    groups_a, groups_b = arrays_a.groups(keys), arrays_b.groups(keys)
    notes = [
        f"only in {side}: {', '.join(map(str, key))}"
        for side, mine, other in (("A", groups_a, groups_b), ("B", groups_b, groups_a))
        for key in sorted(mine)
        if key not in other
    ]
    out = []
    for key in sorted(set(groups_a) & set(groups_b), key=lambda k: tuple(map(str, k))):
        ga, gb = groups_a[key], groups_b[key]
        suite, level, provider = (str(k) for k in key)
        timed_a = ga[arrays_a.ok[ga] & ~arrays_a.cached[ga]]
        timed_b = gb[arrays_b.ok[gb] & ~arrays_b.cached[gb]]
        # Every percentile of a column at once: its samples, sorts and bootstrap draws
        # are the same for p50 and p95 (each comparison is what it would be alone).
        latency: dict[str, Comparison] = {}
        for column, percentiles in _LATENCY_BY_COLUMN.items():
            asked = [m for m in percentiles if m in wanted]
            if not asked:
                continue
            found = independent_percentiles(
                arrays_a.sample(timed_a, column, 1000.0),
                arrays_b.sample(timed_b, column, 1000.0),
                tuple(_LATENCY[m][1] for m in asked),
                confidence=confidence,
                n_resamples=n_resamples,
                seed=seed,
            )
            latency.update(zip(asked, found, strict=True))
        for metric in (m for m in DIFF_METRICS if m in wanted):
            result: Comparison | None
            if metric in _LATENCY:
                result = latency[metric]
            elif metric == "error_rate":
                result = error_rates(
                    int((~arrays_a.ok[ga]).sum()), ga.size,
                    int((~arrays_b.ok[gb]).sum()), gb.size,
                    confidence,
                )  # fmt: skip
            elif metric == "usd_per_1k_requests":
                result = cost_comparison(
                    (arrays_a, ga[arrays_a.ok[ga]]),
                    (arrays_b, gb[arrays_b.ok[gb]]),
                    confidence=confidence,
                    n_resamples=n_resamples,
                    seed=seed,
                )
            else:
                result = quality_comparison(
                    (arrays_a, ga),
                    (arrays_b, gb),
                    metric,
                    confidence=confidence,
                    n_resamples=n_resamples,
                    seed=seed,
                )
            if result is None or (math.isnan(result.a) and math.isnan(result.b)):
                continue
            worse_abs, worse_rel = _worse_by(metric, result.a, result.b)
            threshold = limits[metric]
            beyond = (worse_rel if metric in RELATIVE_THRESHOLDS else worse_abs) > threshold
            if worse_abs <= NOISE_FLOORS.get(metric, 0.0):
                beyond = False
            worse = worse_abs > 0
            change = result.b - result.a
            out.append(
                {
                    "suite": suite,
                    "load_level": level,
                    "provider": provider,
                    "metric": metric,
                    "a": result.a,
                    "b": result.b,
                    "change": change,
                    "change_rel": change / abs(result.a) if result.a else math.nan,
                    "ci_low": result.ci_low,
                    "ci_high": result.ci_high,
                    "p_value": result.p_value,
                    "test": result.test,
                    "n_a": result.n_a,
                    "n_b": result.n_b,
                    "significant": result.significant,
                    "worse": bool(worse),
                    "threshold": threshold,
                    "regression": bool(result.significant and worse and beyond),
                }
            )
    table = pd.DataFrame(out, columns=list(_DIFF_COLUMNS))
    table.attrs["notes"] = notes
    return table
