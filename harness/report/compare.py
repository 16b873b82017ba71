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
import pyarrow as pa

from harness import stats

FloatArray = npt.NDArray[np.float64]


SIMULATED_SUFFIX = " (simulated)"

MEASURED_COLUMNS = (
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
)
"""The row columns every comparison reads: a row's group, whether it counts, its timings
and cost (:data:`DECISION_COLUMNS` and ``diff``'s columns add to them)."""

DECISION_COLUMNS = (
    *MEASURED_COLUMNS,
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
        warm = _flag(rows["warmup"]).to_numpy()
        if warm.any():  # a million rows are not copied to drop none of them
            rows = rows[~warm]
    out = rows.copy(deep=False)  # columns are added or replaced, never written into
    if "load_level" not in out.columns:
        out["load_level"] = "-"
    elif out["load_level"].isna().any():
        out["load_level"] = out["load_level"].astype(object).where(out["load_level"].notna(), "-")
    simulated = (
        _flag(out["simulated"]).to_numpy()
        if "simulated" in out.columns
        else np.zeros(len(out), dtype=bool)
    )
    # Per distinct (provider, simulated) once, not per row: a million rows name a few.
    codes, names = pd.factorize(out["provider"].astype(str), use_na_sentinel=False)
    pair = np.asarray(codes, dtype=np.int64) * 2 + simulated
    distinct, inverse = np.unique(pair, return_inverse=True)
    labels = [str(names[p // 2]) + (SIMULATED_SUFFIX if p % 2 else "") for p in distinct]
    label = (
        pa.DictionaryArray.from_arrays(
            pa.array(inverse.astype(np.int32)), pa.array(labels, pa.string())
        )
        .cast(pa.string())
        .to_pandas()
    )
    label.index = out.index  # positional: the rows' own index may not start at 0
    out["label"] = label
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


_FEW_KEYS = 1 << 16  # key combinations counted with bincount rather than sorted
_FEW_GROUPS = 64  # groups found by one pass each rather than by sorting the rows


class RowArrays:
    """A frame's columns as numpy arrays (each converted once) and its rows grouped by
    key as index arrays, for the decisions over a million rows: a group is an array of
    row numbers (in the frame's order), never a copy of the frame.

    Values and case ids taken through :meth:`sample` are those of :func:`clustered_sample`
    on the same rows: the case codes are the frame's, and the bootstrap numbers a
    sample's clusters by first appearance, as it does for a group's own codes.
    """

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.n = len(frame)
        self._floats: dict[str, FloatArray] = {}
        self._codes: dict[str, tuple[npt.NDArray[np.int64], list[Any]]] = {}
        status = frame["status"] if "status" in frame.columns else pd.Series(dtype=object)
        self.ok = np.asarray((status == "ok").to_numpy(dtype=bool, na_value=False), dtype=bool)
        self.cached = (
            _flag(frame["from_cache"]).to_numpy()
            if "from_cache" in frame.columns
            else np.zeros(self.n, dtype=bool)
        )
        self.cases = case_codes(frame["case_id"]) if "case_id" in frame.columns else None

    def floats(self, column: str) -> FloatArray:
        """The whole column as float64, NaN where missing or not a number."""
        if column not in self._floats:
            values = pd.to_numeric(self.frame[column], errors="coerce")
            self._floats[column] = np.asarray(
                values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64
            )
        return self._floats[column]

    def codes(self, column: str) -> tuple[npt.NDArray[np.int64], list[Any]]:
        """Each row's value as a code (-1: missing) and the values, as ``groupby`` keys."""
        if column not in self._codes:
            codes, uniques = pd.factorize(self.frame[column])
            self._codes[column] = (np.asarray(codes, dtype=np.int64), list(uniques))
        return self._codes[column]

    def groups(
        self, columns: list[str], within: npt.NDArray[np.int64] | None = None
    ) -> dict[tuple[Any, ...], npt.NDArray[np.int64]]:
        """Key values → the (ascending) row numbers with them, of ``within`` (default all
        rows); rows missing a key are in no group, as in ``groupby``."""
        rows = np.arange(self.n, dtype=np.int64) if within is None else within
        coded = [self.codes(c) for c in columns]
        picked = [codes[rows] for codes, _ in coded]
        keep = np.ones(rows.size, dtype=bool)
        for codes in picked:
            keep &= codes >= 0
        rows = rows[keep]
        if not rows.size:
            return {}
        dims = [max(len(values), 1) for _, values in coded]
        flat = np.ravel_multi_index([codes[keep] for codes in picked], dims)
        out: dict[tuple[Any, ...], npt.NDArray[np.int64]] = {}

        def key(code: int) -> tuple[Any, ...]:
            return tuple(coded[i][1][int(k)] for i, k in enumerate(np.unravel_index(code, dims)))

        present = np.unique(flat) if math.prod(dims) > _FEW_KEYS else None
        if present is None:
            present = np.flatnonzero(np.bincount(flat, minlength=math.prod(dims)))
        if present.size <= _FEW_GROUPS:
            # A run has a few dozen groups: one comparison per group beats a sort.
            for code in present:
                out[key(int(code))] = rows[flat == code]
            return out
        order = np.argsort(flat, kind="stable")
        ordered = flat[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        stops = np.r_[starts[1:], ordered.size]
        for start, stop in zip(starts, stops, strict=True):
            out[key(int(ordered[start]))] = rows[order[start:stop]]
        return out

    def sample(
        self, rows: npt.NDArray[np.int64], column: str, scale: float = 1.0
    ) -> tuple[FloatArray, Any]:
        """:func:`clustered_sample` of these rows: the column's values (NaN dropped) and
        each value's case."""
        if column not in self.frame.columns:
            return np.empty(0, dtype=np.float64), None
        values = self.floats(column)[rows]
        keep = ~np.isnan(values)
        cases = None if self.cases is None else self.cases[rows][keep]
        return values[keep] * scale, cases


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


def independent_percentiles(
    a: tuple[FloatArray, Any],
    b: tuple[FloatArray, Any],
    qs: tuple[float, ...],
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> list[Comparison]:
    """``[independent(a, b, stats.Percentile(q), ..., name=f"bootstrap (p{q:g})") for q
    in qs]``, the same comparisons, with what the percentiles of one sample share
    computed once (:func:`harness.stats.bootstrap_differences`)."""
    (va, cases_a), (vb, cases_b) = a, b
    points = [
        (
            float(stats.Percentile(q)(va)) if va.size else math.nan,
            float(stats.Percentile(q)(vb)) if vb.size else math.nan,
        )
        for q in qs
    ]
    if va.size < 2 or vb.size < 2:
        return [untested(pa_, pb, "too few values", va.size, vb.size) for pa_, pb in points]
    boots = stats.bootstrap_differences(
        vb, va, qs, clusters_a=cases_b, clusters_b=cases_a, n_resamples=n_resamples, seed=seed
    )
    out = []
    for q, (point_a, point_b), boot in zip(qs, points, boots, strict=True):
        low, high = stats.percentile_interval(boot, confidence)
        out.append(
            Comparison(
                point_a,
                point_b,
                low,
                high,
                stats.two_sided_p(boot),
                f"bootstrap (p{q:g})",
                va.size,
                vb.size,
                low > 0 or high < 0,
            )
        )
    return out


def error_rates(errors_a: int, n_a: int, errors_b: int, n_b: int, confidence: float) -> Comparison:
    """Error rates of two groups (every status but ``ok`` is an error)."""
    if not n_a or not n_b:
        return untested(math.nan, math.nan, "no requests", n_a, n_b)
    # Newcombe's hybrid score interval of pb − pa (from Wilson intervals): sensible at 0.
    low, high = stats.newcombe_interval(errors_b, n_b, errors_a, n_a, confidence)
    p = stats.fisher_exact(errors_a, n_a, errors_b, n_b)
    return Comparison(
        errors_a / n_a,
        errors_b / n_b,
        low,
        high,
        p,
        "Fisher exact",
        n_a,
        n_b,
        p < 1.0 - confidence,
    )


Group = tuple[RowArrays, npt.NDArray[np.int64]]
"""A group of rows: the run's arrays and the group's row numbers in them."""


def quality_comparison(
    ga: Group,
    gb: Group,
    metric: str,
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> Comparison | None:
    """The paired comparison of ``metric`` on the cases both groups scored."""
    scored_a, scored_b = _scored(ga, metric), _scored(gb, metric)
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


def _scored(group: Group, metric: str) -> pd.DataFrame:
    """The group's rows with a ``metric`` score: their case id and score only."""
    arrays, rows = group
    if metric not in arrays.frame.columns:
        return pd.DataFrame({"case_id": [], metric: []})
    picked = rows[~np.isnan(arrays.floats(metric)[rows])]
    columns = ["case_id", metric] if "case_id" in arrays.frame.columns else [metric]
    return arrays.frame[columns].iloc[picked]


def cost_comparison(
    ok_a: Group, ok_b: Group, *, confidence: float, n_resamples: int, seed: int
) -> Comparison:
    """Mean cost per successful request (of the groups' successful rows), × 1000."""
    sample_a = ok_a[0].sample(ok_a[1], "cost_usd", 1000.0)
    sample_b = ok_b[0].sample(ok_b[1], "cost_usd", 1000.0)
    n_a, n_b = ok_a[1].size, ok_b[1].size
    # Any unpriced successful request (or none at all) makes the cost unknown.
    unpriced_a = sample_a[0].size < n_a or n_a == 0
    unpriced_b = sample_b[0].size < n_b or n_b == 0
    if unpriced_a or unpriced_b:
        a = math.nan if unpriced_a else float(sample_a[0].mean())
        b = math.nan if unpriced_b else float(sample_b[0].mean())
        return untested(a, b, "no price", n_a, n_b)
    return independent(
        sample_a,
        sample_b,
        np.mean,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        name="bootstrap (mean)",
    )
