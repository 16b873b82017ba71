"""What every decision shares: which rows count, and how two samples are compared.

Used by :mod:`.leaderboard`, :mod:`.diff` and :mod:`.gate`; every statistic comes
from :mod:`harness.stats`.

Conventions
-----------
Warm-up rows (``warmup == True``) are never used. Latency and cost use successful
requests (``status == "ok"``) only; the error rate counts every other status (including
``cancelled``) as an error, exactly as the summary does. Failed ``rag_qa`` requests are
scored 0 by the suite, so quality already pays for errors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from harness import stats

FloatArray = npt.NDArray[np.float64]


SIMULATED_SUFFIX = " (simulated)"

DECISION_COLUMNS = (
    "suite",
    "load_level",
    "provider",
    "simulated",
    "warmup",
    "status",
    "from_cache",
    "case_id",
    "ttft_s",
    "e2e_s",
    "itl_s",
    "cost_usd",
    # capacity at an SLO beside the ranks (harness.report.capacity)
    "started_at",
    "sent_s",
    "output_tokens",
    "suite_kind",
    # each kind's primary score (harness.report.quality.QUALITY_BY_KIND)
    "exact_match_abstain",
    "tool_exact",
    "field_accuracy",
    "turn_score",
)
"""Every row column the leaderboard, diff and gate read (a million rows of the others
would only be copied around by each filter)."""


# Per metric, a change no larger than this (in ms) is never a regression, whatever its
# relative size: it is within the instrument's error. TTFT and E2E rest on one or two
# timestamps, good to a few ms (same-profile simulator runs differ by ~2 ms, more on a
# loaded machine), so "20 ms became 22.5 ms" is noise. ITL averages the gaps of one
# stream, so its error is far smaller, but chunk coalescing moves it too: identical runs
# on a loaded 2-core machine gave ITL p50 3.7–4.2 ms at 4 ms nominal and 0.0–1.0 ms at
# 1 ms. Hence 2 ms: twice the largest same-profile swing, and 4 → 9 ms is flagged.
NOISE_FLOORS: Mapping[str, float] = {
    "ttft_p50_ms": 5.0,
    "ttft_p95_ms": 5.0,
    "e2e_p50_ms": 5.0,
    "itl_p50_ms": 2.0,
}


def base_name(label: str) -> str:
    return label.removesuffix(SIMULATED_SUFFIX)


def _flag(series: pd.Series[Any]) -> pd.Series[bool]:
    """True where the (possibly nullable) boolean column is true; null counts as false."""
    return series.astype("boolean").fillna(False).astype(bool)


def measured_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Non-warm-up rows, load level filled, plus ``label``: the provider as tables show it."""
    if "warmup" in rows.columns:
        rows = rows[~_flag(rows["warmup"])]
    out = rows.copy(deep=False)  # columns are added or replaced, never written into
    out["load_level"] = (
        out["load_level"].astype(object).where(out["load_level"].notna(), "-")
        if "load_level" in out.columns
        else "-"
    )
    names = out["provider"].astype(str)
    simulated = (
        _flag(out["simulated"]).to_numpy()
        if "simulated" in out.columns
        else np.zeros(len(out), dtype=bool)
    )
    out["label"] = np.where(simulated, names + SIMULATED_SUFFIX, names)
    return out


def ok_rows(group: pd.DataFrame) -> pd.DataFrame:
    return group[group["status"] == "ok"]


def timed_rows(group: pd.DataFrame) -> pd.DataFrame:
    """Successful rows that were measured: a response-cache hit has no latency."""
    ok = ok_rows(group)
    return ok[~_flag(ok["from_cache"])] if "from_cache" in ok.columns else ok


def column_values(group: pd.DataFrame, column: str, scale: float = 1.0) -> FloatArray:
    if column not in group.columns:
        return np.empty(0, dtype=np.float64)
    values = pd.to_numeric(group[column], errors="coerce").dropna()
    return values.to_numpy(dtype=np.float64) * scale


def clustered_sample(
    group: pd.DataFrame, column: str, scale: float = 1.0
) -> tuple[FloatArray, Any]:
    """A column's values and each value's case id, the cluster for the bootstrap."""
    if column not in group.columns:
        return np.empty(0, dtype=np.float64), None
    values = pd.to_numeric(group[column], errors="coerce").dropna()
    cases = case_codes(group.loc[values.index, "case_id"]) if "case_id" in group else None
    return values.to_numpy(dtype=np.float64) * scale, cases


def case_codes(cases: pd.Series[Any]) -> npt.NDArray[np.int64]:
    """Each row's case as an integer (a missing case id is one more case): the same
    clusters as the ids themselves, and far quicker for the bootstrap to group."""
    codes, _ = pd.factorize(cases, use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64)


class Comparison(NamedTuple):
    a: float
    b: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    n_a: int
    n_b: int
    significant: bool


def untested(a: float, b: float, test: str, n_a: int, n_b: int) -> Comparison:
    return Comparison(a, b, math.nan, math.nan, math.nan, test, n_a, n_b, False)


def independent(
    a: tuple[FloatArray, Any],
    b: tuple[FloatArray, Any],
    stat: stats.Statistic,
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
    name: str,
) -> Comparison:
    """Bootstrap each run's values independently (clustered by case when a case has
    repeats); CI of stat(B) − stat(A)."""
    (va, cases_a), (vb, cases_b) = a, b
    point_a = float(stat(va)) if va.size else math.nan
    point_b = float(stat(vb)) if vb.size else math.nan
    if va.size < 2 or vb.size < 2:
        return untested(point_a, point_b, "too few values", va.size, vb.size)
    boot = stats.bootstrap_difference(
        vb, va, stat, clusters_a=cases_b, clusters_b=cases_a, n_resamples=n_resamples, seed=seed
    )
    low, high = stats.percentile_interval(boot, confidence)
    return Comparison(
        point_a,
        point_b,
        low,
        high,
        stats.two_sided_p(boot),
        name,
        va.size,
        vb.size,
        low > 0 or high < 0,
    )


def error_rates(ga: pd.DataFrame, gb: pd.DataFrame, confidence: float) -> Comparison:
    n_a, n_b = len(ga), len(gb)
    e_a, e_b = int((ga["status"] != "ok").sum()), int((gb["status"] != "ok").sum())
    if not n_a or not n_b:
        return untested(math.nan, math.nan, "no requests", n_a, n_b)
    # Newcombe's hybrid score interval of pb − pa (from Wilson intervals): sensible at 0.
    low, high = stats.newcombe_interval(e_b, n_b, e_a, n_a, confidence)
    p = stats.fisher_exact(e_a, n_a, e_b, n_b)
    return Comparison(
        e_a / n_a, e_b / n_b, low, high, p, "Fisher exact", n_a, n_b, p < 1.0 - confidence
    )


def quality_comparison(
    ga: pd.DataFrame,
    gb: pd.DataFrame,
    metric: str,
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> Comparison | None:
    scored_a = ga[ga[metric].notna()] if metric in ga.columns else ga.iloc[:0]
    scored_b = gb[gb[metric].notna()] if metric in gb.columns else gb.iloc[:0]
    if scored_a.empty and scored_b.empty:
        return None  # not a scored suite
    # One value per case (repeats are one unit of evidence), paired on the case id.
    both = pd.concat(
        [
            stats.per_case(scored_a.assign(run="a"), metric, "run"),
            stats.per_case(scored_b.assign(run="b"), metric, "run"),
        ],
        axis=1,
        join="inner",
    )
    if len(both) < 2:
        a = float(scored_a[metric].mean()) if len(scored_a) else math.nan
        b = float(scored_b[metric].mean()) if len(scored_b) else math.nan
        return untested(a, b, "no paired cases", len(both), len(both))
    test = stats.compare_paired(
        both["b"].to_numpy(),
        both["a"].to_numpy(),
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )
    n = test["n"]
    return Comparison(
        test["mean_b"],
        test["mean_a"],
        test["ci_low"],
        test["ci_high"],
        test["p_exact"],
        f"{test['test']} + paired bootstrap",
        n,
        n,
        test["significant"],
    )


def cost_comparison(
    ga: pd.DataFrame, gb: pd.DataFrame, *, confidence: float, n_resamples: int, seed: int
) -> Comparison:
    ok_a, ok_b = ok_rows(ga), ok_rows(gb)
    unpriced_a = bool(ok_a["cost_usd"].isna().any()) or ok_a.empty
    unpriced_b = bool(ok_b["cost_usd"].isna().any()) or ok_b.empty
    sample_a, sample_b = (
        clustered_sample(ok_a, "cost_usd", 1000.0),
        clustered_sample(ok_b, "cost_usd", 1000.0),
    )
    if unpriced_a or unpriced_b:
        a = math.nan if unpriced_a else float(sample_a[0].mean())
        b = math.nan if unpriced_b else float(sample_b[0].mean())
        return untested(a, b, "no price", len(ok_a), len(ok_b))
    return independent(
        sample_a,
        sample_b,
        np.mean,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        name="bootstrap (mean)",
    )
