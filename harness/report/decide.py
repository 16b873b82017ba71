"""Decisions from stored runs: a leaderboard, run-to-run regressions, history, an adoption gate.

Pure functions over pandas DataFrames: the per-request rows as
``read_runs(root, ids).to_pandas()`` returns them, or the table of
:func:`harness.report.summary.summarize`. Nothing here reads files or prints.

* :func:`leaderboard`: one line per provider, a weighted score of quality, latency and
  cost, the Pareto front, and the providers' tags (filterable with ``where``).
* :func:`pareto_front`: which rows no other row dominates.
* :func:`parse_weights`, :func:`parse_where`: the command-line forms of those options.
* :func:`diff_runs`: run A (baseline) against run B per suite, provider and load level,
  with a significance test per metric and a ``regression`` flag.
* :func:`history`: one summary metric over many runs, in start-time order.
* :func:`adoption_gate` / :func:`render_gate`: should the candidate replace the baseline?

Conventions
-----------
Warm-up rows (``warmup == True``) are never used. Latency and cost use successful
requests (``status == "ok"``) only; the error rate counts every other status (including
``cancelled``) as an error, exactly as the summary does. Failed ``rag_qa`` requests are
scored 0 by the suite, so quality already pays for errors.

Leaderboard aggregation (a provider usually has several summary lines: suites × load
levels):

* ``quality``: the unweighted mean of ``exact_match_abstain`` over the lines that have it
  (``rag_qa`` suites); every suite counts the same, whatever its size. Its interval
  combines the lines' intervals as independent estimates of a mean
  (``q ± sqrt(Σ half-width²) / k``, one side at a time); with one line it is that line's
  bootstrap interval.
* ``ttft_p50_ms`` and ``e2e_p95_ms``: the median over lines, so one odd suite does not
  dominate.
* ``usd_per_1k_requests``: the mean over lines with at least one successful request (a
  sum would grow with the number of suites a provider was run on). One unpriced line
  makes it unknown ("no price"), as in the summary.
* ``error_rate``: all errors over all requests.

Scores: each used dimension is min–max normalised to [0, 1] across the listed providers
(after ``where``; lower is better for latency and cost); with one provider, or all equal,
every provider gets 1.0. Weights are normalised to sum 1; a dimension with weight 0 is
not used, and one that no provider has is dropped with the weights renormalised (said
in ``table.attrs["notes"]``). A provider missing a used dimension gets score NaN, is
ranked after every scored provider, and the ``missing`` column says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from harness.report.summary import PRIMARY_QUALITY, percentile_ci, summarize
from harness.scoring import mcnemar, paired_bootstrap

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DEFAULT_WEIGHTS",
    "DIFF_METRICS",
    "DIMENSIONS",
    "GateCheck",
    "GateResult",
    "adoption_gate",
    "diff_runs",
    "history",
    "leaderboard",
    "pareto_front",
    "parse_weights",
    "parse_where",
    "render_gate",
    "tags_from_manifest",
]

FloatArray = npt.NDArray[np.float64]

SIMULATED_SUFFIX = " (simulated)"

DIMENSIONS = ("quality", "latency", "cost")
DEFAULT_WEIGHTS: Mapping[str, float] = {"quality": 0.5, "latency": 0.3, "cost": 0.2}
# Dimension → (leaderboard column, higher is better, why a provider lacks it).
_DIMENSION_COLUMNS: Mapping[str, tuple[str, bool, str]] = {
    "quality": ("quality", True, "no quality scores"),
    "latency": ("ttft_p50_ms", False, "no successful request"),
    "cost": ("usd_per_1k_requests", False, "no price"),
}
_BOARD_COLUMNS = (
    "rank",
    "provider",
    "score",
    "quality",
    "quality_ci_low",
    "quality_ci_high",
    "ttft_p50_ms",
    "e2e_p95_ms",
    "usd_per_1k_requests",
    "error_rate",
    "pareto",
    "missing",
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
# A latency change smaller than this is never a regression, whatever its relative
# size: a client's timestamps are good to a few milliseconds (see the clock-health
# check), so "20 ms became 22.5 ms" is within the instrument's error.
MIN_LATENCY_CHANGE_MS = 5.0
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
# Upper bound on resample-matrix elements held at once (8 bytes each: ~32 MB).
_MAX_CHUNK_ELEMENTS = 4_000_000


# --------------------------------------------------------------------------- parsing


def _check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Validated weights for every dimension (unnamed ones are 0), not yet normalised."""
    out = dict.fromkeys(DIMENSIONS, 0.0)
    for name, value in weights.items():
        if name not in DIMENSIONS:
            raise ValueError(
                f"unknown weight dimension {name!r}; use one of {', '.join(DIMENSIONS)}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"weight {name}={value!r} is not a number")
        if not math.isfinite(value):
            raise ValueError(f"weight {name}={value!r} is not a finite number")
        if value < 0:
            raise ValueError(f"weight {name}={value:g} is negative; weights must be >= 0")
        out[name] = float(value)
    if sum(out.values()) <= 0:
        raise ValueError("weights are all 0; give at least one dimension a positive weight")
    return out


def _pairs(text: str, what: str, example: str) -> list[tuple[str, str]]:
    if not text.strip():
        raise ValueError(f"{what}: empty; expected e.g. {example}")
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in text.split(","):
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep:
            raise ValueError(f"{what}: {item.strip()!r} is not NAME=VALUE (e.g. {example})")
        if not name:
            raise ValueError(f"{what}: {item.strip()!r} has no name before '='")
        if not value:
            raise ValueError(f"{what}: {name!r} has no value after '='")
        if name in seen:
            raise ValueError(f"{what}: {name!r} is given twice")
        seen.add(name)
        out.append((name, value))
    return out


def parse_weights(text: str) -> dict[str, float]:
    """Parse ``"quality=0.5,latency=0.3,cost=0.2"`` into a weight per dimension.

    Dimensions not named get weight 0 (``"quality=1"`` ranks by quality alone). The
    weights need not sum to 1: :func:`leaderboard` normalises them.

    Raises:
        ValueError: naming the culprit, for an unknown dimension, a value that is not a
            finite number, a negative value, a repeated name, or all weights 0.
    """
    weights: dict[str, float] = {}
    for name, raw in _pairs(text, "weights", "quality=0.5,latency=0.3,cost=0.2"):
        if name not in DIMENSIONS:
            raise ValueError(
                f"unknown weight dimension {name!r}; use one of {', '.join(DIMENSIONS)}"
            )
        try:
            weights[name] = float(raw)
        except ValueError:
            raise ValueError(f"weight {name}={raw!r} is not a number") from None
    return _check_weights(weights)


def parse_where(text: str) -> dict[str, str]:
    """Parse ``"region=eu,open_weights=true"`` into tag filters for :func:`leaderboard`.

    Raises:
        ValueError: for an item without ``=``, an empty name or value, or a repeated name.
    """
    return dict(_pairs(text, "where", "region=eu"))


def tags_from_manifest(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Provider name → tags, as a run's manifest stores them (``providers.<name>.tags``)."""
    providers = manifest.get("providers") or {}
    return {
        str(name): dict(entry.get("tags") or {})
        for name, entry in providers.items()
        if isinstance(entry, Mapping)
    }


# --------------------------------------------------------------------------- leaderboard


def _base_name(label: str) -> str:
    return label.removesuffix(SIMULATED_SUFFIX)


def _tag_text(value: Any) -> str:
    """A tag value as compared by ``where``: case-insensitive text, booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().lower()


def _numeric(table: pd.DataFrame, column: str) -> pd.Series[float]:
    if column not in table.columns:
        return pd.Series(np.nan, index=table.index, dtype=float)
    return pd.to_numeric(table[column], errors="coerce").astype(float)


def _combined_ci(
    means: npt.NDArray[np.floating[Any]],
    lows: npt.NDArray[np.floating[Any]],
    highs: npt.NDArray[np.floating[Any]],
) -> tuple[float, float]:
    """Interval of the mean of ``k`` independent estimates from their own intervals."""
    if means.size == 0 or np.isnan(lows).any() or np.isnan(highs).any():
        return math.nan, math.nan
    k = means.size
    centre = float(means.mean())
    below = math.sqrt(float(np.square(means - lows).sum())) / k
    above = math.sqrt(float(np.square(highs - means).sum())) / k
    return centre - below, centre + above


def _aggregate(summary: pd.DataFrame) -> pd.DataFrame:
    """One line per provider from the summary's (suite, load level, provider) lines."""
    lines = []
    for provider, group in summary.groupby("provider", sort=True):
        requests = _numeric(group, "requests")
        errors = _numeric(group, "errors")
        quality = _numeric(group, PRIMARY_QUALITY)
        has_quality = quality.notna().to_numpy()
        low, high = _combined_ci(
            quality.to_numpy(dtype=np.float64)[has_quality],
            _numeric(group, f"{PRIMARY_QUALITY}_ci_low").to_numpy(dtype=np.float64)[has_quality],
            _numeric(group, f"{PRIMARY_QUALITY}_ci_high").to_numpy(dtype=np.float64)[has_quality],
        )
        # Lines without a successful request have no price to report, not "no price".
        answered = (requests > errors).to_numpy()
        prices = _numeric(group, "usd_per_1k_requests").to_numpy()[answered]
        price = float(prices.mean()) if prices.size and not np.isnan(prices).any() else math.nan
        total = float(requests.sum())
        lines.append(
            {
                "provider": str(provider),
                "quality": float(quality.mean()) if has_quality.any() else math.nan,
                "quality_ci_low": low,
                "quality_ci_high": high,
                "ttft_p50_ms": float(_numeric(group, "ttft_p50_ms").median()),
                "e2e_p95_ms": float(_numeric(group, "e2e_p95_ms").median()),
                "usd_per_1k_requests": price,
                "error_rate": float(errors.sum()) / total if total > 0 else math.nan,
                "suites": frozenset(str(s) for s in group["suite"]),
            }
        )
    return pd.DataFrame(lines)


def _tag_columns(
    providers: Sequence[str], tags: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[Any]]:
    keys: list[str] = []
    for provider_tags in tags.values():
        keys.extend(k for k in provider_tags if k not in keys)
    # Tags are configured per provider name; labels add " (simulated)".
    found = [tags.get(p, tags.get(_base_name(p), {})) for p in providers]
    return {key: [entry.get(key) for entry in found] for key in keys}


def _where_mask(
    tag_values: Mapping[str, list[Any]], where: Mapping[str, str], n: int
) -> npt.NDArray[np.bool_]:
    mask = np.ones(n, dtype=bool)
    for key, wanted in where.items():
        if key not in tag_values:
            known = ", ".join(sorted(tag_values)) or "none"
            raise ValueError(f"where: no provider has a tag {key!r} (tags: {known})")
        target = _tag_text(wanted)
        mask &= np.array(
            [value is not None and _tag_text(value) == target for value in tag_values[key]],
            dtype=bool,
        )
    return mask


def _normalised(values: pd.Series[float], higher_is_better: bool) -> pd.Series[float]:
    present = values.dropna()
    if present.empty:
        return values
    low, high = float(present.min()), float(present.max())
    if high == low:
        return values.where(values.isna(), 1.0)
    scaled = (values - low) / (high - low)
    return scaled if higher_is_better else 1.0 - scaled


def leaderboard(
    summary: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    tags: Mapping[str, Mapping[str, Any]] | None = None,
    where: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One line per provider, best first: a weighted score of quality, latency and cost.

    Args:
        summary: the table of :func:`harness.report.summary.summarize`.
        weights: per dimension (``quality``, ``latency`` = TTFT p50, ``cost`` = $ per 1k
            requests); unnamed dimensions get 0; default 0.5/0.3/0.2. Normalised to sum 1.
        tags: provider name → tags (see :func:`tags_from_manifest`); a label ending in
            ``" (simulated)"`` is matched by the name without the suffix. One column per
            tag key is added.
        where: keep providers whose tag equals the value (text, case-insensitive;
            ``true``/``false`` match booleans). Scores are normalised among those kept.

    Returns:
        Columns ``rank, provider, score, quality, [quality_ci_low, quality_ci_high],
        ttft_p50_ms, e2e_p95_ms, usd_per_1k_requests, error_rate, pareto, missing`` and
        the tag columns. ``attrs["weights"]`` holds the weights used and
        ``attrs["notes"]`` what was dropped or should be known. Aggregation and NaN
        handling are described in the module docstring. ``pareto`` is the front (see
        :func:`pareto_front`) over the used dimensions among the scored providers;
        unscored providers are never on it.

    Raises:
        ValueError: for bad weights, or a ``where`` key that no provider has as a tag.
    """
    wanted = _check_weights(weights if weights is not None else DEFAULT_WEIGHTS)
    notes: list[str] = []
    board = _aggregate(summary) if len(summary) else pd.DataFrame()
    providers = [str(p) for p in board["provider"]] if len(board) else []
    tag_values = _tag_columns(providers, tags or {})
    if where:
        if tags is None:
            raise ValueError("where: no provider tags were given to filter on")
        mask = _where_mask(tag_values, where, len(providers))
        board = board[mask].reset_index(drop=True)
        tag_values = {
            k: [v for v, m in zip(vs, mask, strict=True) if m] for k, vs in tag_values.items()
        }
        if board.empty:
            notes.append("no provider matches " + ", ".join(f"{k}={v}" for k, v in where.items()))
    if board.empty:
        empty = pd.DataFrame(columns=[*_BOARD_COLUMNS, *tag_values])
        empty.attrs.update(weights=wanted, notes=notes)
        return empty

    used = {}
    for dim, weight in wanted.items():
        column = _DIMENSION_COLUMNS[dim][0]
        if weight > 0 and board[column].isna().all():
            notes.append(f"{dim} dropped: no provider has {column}")
        elif weight > 0:
            used[dim] = weight
    total = sum(used.values())
    used = {dim: w / total for dim, w in used.items()}
    if not used:
        notes.append("no dimension left to score: every score is NaN")
    elif used != {d: w / sum(wanted.values()) for d, w in wanted.items() if w > 0}:
        notes.append(
            "weights renormalised to " + ", ".join(f"{d}={w:.3g}" for d, w in used.items())
        )
    if len(set(board["suites"])) > 1:
        notes.append("providers were not run on the same suites: aggregates may not compare")

    score = pd.Series(0.0 if used else math.nan, index=board.index)
    missing: list[list[str]] = [[] for _ in range(len(board))]
    for dim, weight in used.items():
        column, higher, reason = _DIMENSION_COLUMNS[dim]
        score = score + weight * _normalised(board[column], higher)
        for i in np.flatnonzero(board[column].isna().to_numpy()):
            missing[i].append(reason)
    board["score"] = score
    board["missing"] = ["; ".join(m) if m else None for m in missing]

    scored = board["score"].notna()
    # Rounded so that float noise in the weighted sum does not split genuine ties.
    rounded = board["score"].round(12)
    ranks = rounded.rank(method="min", ascending=False)
    board["rank"] = ranks.fillna(float(scored.sum()) + 1).astype(int)
    pareto = pd.Series(False, index=board.index)
    if used and scored.any():
        maximize = ["quality"] if "quality" in used else []
        minimize = [_DIMENSION_COLUMNS[d][0] for d in ("latency", "cost") if d in used]
        pareto[scored] = pareto_front(board[scored], maximize=maximize, minimize=minimize)
    board["pareto"] = pareto.astype(bool)
    for key, values in tag_values.items():
        name = key if key not in _BOARD_COLUMNS else f"tag_{key}"
        board[name] = values

    columns = [
        c for c in _BOARD_COLUMNS if not c.startswith("quality_ci") or board[c].notna().any()
    ]
    tag_names = [k if k not in _BOARD_COLUMNS else f"tag_{k}" for k in tag_values]
    board = board.sort_values(["rank", "provider"], kind="stable").reset_index(drop=True)
    out = board[[*columns, *tag_names]].copy()
    out.attrs.update(weights=used, notes=notes)
    return out


def pareto_front(
    df: pd.DataFrame,
    maximize: Sequence[str] = ("quality",),
    minimize: Sequence[str] = ("ttft_p50_ms", "usd_per_1k_requests"),
) -> pd.Series[bool]:
    """Which rows are on the Pareto front: no other row is at least as good on every
    dimension and strictly better on one.

    Rows with equal values do not dominate each other, so ties are all on the front.
    A dimension with a NaN in any row is left out for every row (so that the front is
    computed on dimensions every row has); the names left out are in
    ``result.attrs["ignored"]``. With no dimension left every row is on the front.

    Raises:
        KeyError: for a dimension that is not a column of ``df``.
    """
    absent = [c for c in (*maximize, *minimize) if c not in df.columns]
    if absent:
        raise KeyError(f"pareto_front: no column {', '.join(map(repr, absent))}")
    usable = [c for c in (*maximize, *minimize) if df[c].notna().all()]
    ignored = [c for c in (*maximize, *minimize) if c not in usable]
    if not usable or len(df) == 0:
        everyone = pd.Series(True, index=df.index, dtype=bool)
        everyone.attrs["ignored"] = ignored
        return everyone
    # Everything as "lower is better".
    values = np.column_stack(
        [
            -df[c].to_numpy(dtype=float) if c in maximize else df[c].to_numpy(dtype=float)
            for c in usable
        ]
    )
    no_worse = (values[:, None, :] <= values[None, :, :]).all(axis=2)  # [j, i]: j ≤ i
    better = (values[:, None, :] < values[None, :, :]).any(axis=2)
    dominated: npt.NDArray[np.bool_] = np.asarray((no_worse & better).any(axis=0), dtype=bool)
    front = pd.Series(~dominated, index=df.index, dtype=bool)
    front.attrs["ignored"] = ignored
    return front


# --------------------------------------------------------------------------- rows helpers


def _flag(series: pd.Series[Any]) -> pd.Series[bool]:
    """True where the (possibly nullable) boolean column is true; null counts as false."""
    return series.astype("boolean").fillna(False).astype(bool)


def _measured(rows: pd.DataFrame) -> pd.DataFrame:
    """Non-warm-up rows, load level filled, plus ``label``: the provider as tables show it."""
    if "warmup" in rows.columns:
        rows = rows[~_flag(rows["warmup"])]
    out = rows.copy()
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


def _ok(group: pd.DataFrame) -> pd.DataFrame:
    return group[group["status"] == "ok"]


def _timed(group: pd.DataFrame) -> pd.DataFrame:
    """Successful rows that were measured: a response-cache hit has no latency."""
    ok = _ok(group)
    return ok[~_flag(ok["from_cache"])] if "from_cache" in ok.columns else ok


def _values(group: pd.DataFrame, column: str, scale: float = 1.0) -> FloatArray:
    if column not in group.columns:
        return np.empty(0, dtype=np.float64)
    values = pd.to_numeric(group[column], errors="coerce").dropna()
    return values.to_numpy(dtype=np.float64) * scale


def _bootstrap(
    values: FloatArray,
    stat: Callable[[FloatArray], FloatArray],
    n_resamples: int,
    rng: np.random.Generator,
) -> FloatArray:
    """``stat`` (applied along axis 1) of ``n_resamples`` resamples of ``values``."""
    n = values.size
    out = np.empty(n_resamples, dtype=np.float64)
    chunk = max(1, _MAX_CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        out[start:stop] = stat(values[rng.integers(0, n, size=(stop - start, n))])
    return out


def _two_sided_p(boot: FloatArray) -> float:
    # As in harness.scoring.paired_bootstrap: twice the smaller tail beyond 0, +1 corrected.
    below = int(np.count_nonzero(boot <= 0.0))
    above = int(np.count_nonzero(boot >= 0.0))
    return min(1.0, 2.0 * (min(below, above) + 1) / (boot.size + 1))


# --------------------------------------------------------------------------- diff


class _Comparison(NamedTuple):
    a: float
    b: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    n_a: int
    n_b: int
    significant: bool


def _untested(a: float, b: float, test: str, n_a: int, n_b: int) -> _Comparison:
    return _Comparison(a, b, math.nan, math.nan, math.nan, test, n_a, n_b, False)


def _independent(
    va: FloatArray,
    vb: FloatArray,
    stat: Callable[[FloatArray], FloatArray],
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
    name: str,
) -> _Comparison:
    """Bootstrap each run's values independently; CI of stat(B) − stat(A)."""
    a = float(stat(va[None, :])[0]) if va.size else math.nan
    b = float(stat(vb[None, :])[0]) if vb.size else math.nan
    if va.size < 2 or vb.size < 2:
        return _untested(a, b, "too few values", va.size, vb.size)
    rng = np.random.default_rng(seed)
    boot = _bootstrap(vb, stat, n_resamples, rng) - _bootstrap(va, stat, n_resamples, rng)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = (float(x) for x in np.percentile(boot, [tail, 100.0 - tail]))
    return _Comparison(
        a, b, low, high, _two_sided_p(boot), name, va.size, vb.size, low > 0 or high < 0
    )


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _fisher_exact(errors_a: int, n_a: int, errors_b: int, n_b: int) -> float:
    """Two-sided p-value of Fisher's exact test on two error counts.

    Exact, so it stays honest for the few errors typical of a healthy provider, where the
    normal approximation of the two-proportion z-test does not hold.
    """
    total, bad = n_a + n_b, errors_a + errors_b
    if bad in (0, total):
        return 1.0
    low, high = max(0, n_a - (total - bad)), min(bad, n_a)
    norm = _log_comb(total, n_a)
    logs = np.array(
        [_log_comb(bad, x) + _log_comb(total - bad, n_a - x) - norm for x in range(low, high + 1)]
    )
    observed = logs[errors_a - low]
    # Tables as or less likely than the observed one; the tolerance absorbs rounding.
    return float(min(1.0, np.exp(logs[logs <= observed + 1e-7]).sum()))


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def _error_rates(ga: pd.DataFrame, gb: pd.DataFrame, confidence: float) -> _Comparison:
    n_a, n_b = len(ga), len(gb)
    e_a, e_b = int((ga["status"] != "ok").sum()), int((gb["status"] != "ok").sum())
    if not n_a or not n_b:
        return _untested(math.nan, math.nan, "no requests", n_a, n_b)
    pa, pb = e_a / n_a, e_b / n_b
    # Newcombe's hybrid score interval of pb − pa (from Wilson intervals): sensible at 0.
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    la, ua = _wilson(e_a, n_a, z)
    lb, ub = _wilson(e_b, n_b, z)
    d = pb - pa
    low = d - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2)
    high = d + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2)
    p = _fisher_exact(e_a, n_a, e_b, n_b)
    return _Comparison(pa, pb, low, high, p, "Fisher exact", n_a, n_b, p < 1.0 - confidence)


def _quality(
    ga: pd.DataFrame,
    gb: pd.DataFrame,
    metric: str,
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> _Comparison | None:
    scored_a = ga[ga[metric].notna()] if metric in ga.columns else ga.iloc[:0]
    scored_b = gb[gb[metric].notna()] if metric in gb.columns else gb.iloc[:0]
    if scored_a.empty and scored_b.empty:
        return None  # not a scored suite
    keys = ["case_id", "repeat"]
    per_a = scored_a.groupby(keys)[metric].mean()
    per_b = scored_b.groupby(keys)[metric].mean()
    both = pd.concat([per_a.rename("a"), per_b.rename("b")], axis=1, join="inner")
    if len(both) < 2:
        a = float(scored_a[metric].mean()) if len(scored_a) else math.nan
        b = float(scored_b[metric].mean()) if len(scored_b) else math.nan
        return _untested(a, b, "no paired cases", len(both), len(both))
    va, vb = both["a"].to_numpy(dtype=float), both["b"].to_numpy(dtype=float)
    boot = paired_bootstrap(vb, va, n_resamples=n_resamples, confidence=confidence, seed=seed)
    excludes_zero = boot["ci_low"] > 0 or boot["ci_high"] < 0
    binary = bool(np.isin(va, (0.0, 1.0)).all() and np.isin(vb, (0.0, 1.0)).all())
    if binary:
        # As in paired_quality: with few discordant cases the bootstrap interval is too
        # narrow, so McNemar's exact test must agree.
        p = mcnemar((va >= 0.5).tolist(), (vb >= 0.5).tolist())["p_value"]
        significant = excludes_zero and p < 1.0 - confidence
        test = "McNemar + paired bootstrap"
    else:
        p, significant, test = boot["p_value"], excludes_zero, "paired bootstrap"
    n = len(both)
    return _Comparison(
        float(va.mean()),
        float(vb.mean()),
        boot["ci_low"],
        boot["ci_high"],
        p,
        test,
        n,
        n,
        significant,
    )


def _cost(
    ga: pd.DataFrame, gb: pd.DataFrame, *, confidence: float, n_resamples: int, seed: int
) -> _Comparison:
    ok_a, ok_b = _ok(ga), _ok(gb)
    unpriced_a = bool(ok_a["cost_usd"].isna().any()) or ok_a.empty
    unpriced_b = bool(ok_b["cost_usd"].isna().any()) or ok_b.empty
    va, vb = _values(ok_a, "cost_usd", 1000.0), _values(ok_b, "cost_usd", 1000.0)
    if unpriced_a or unpriced_b:
        a = math.nan if unpriced_a else float(va.mean())
        b = math.nan if unpriced_b else float(vb.mean())
        return _untested(a, b, "no price", len(ok_a), len(ok_b))

    def mean(x: FloatArray) -> FloatArray:
        return np.asarray(x.mean(axis=1), dtype=np.float64)

    return _independent(
        va,
        vb,
        mean,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        name="bootstrap (mean)",
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
) -> pd.DataFrame:
    """Compare run B with run A (the baseline) per (suite, load level, provider) and metric.

    Metrics are :data:`DIFF_METRICS`. For each: ``a``, ``b``, ``change`` (= b − a),
    ``change_rel`` (= change / |a|), ``ci_low``/``ci_high`` (interval of b − a at
    ``confidence``), ``p_value``, the ``test`` used, ``n_a``/``n_b``, then
    ``significant``, ``worse`` and ``regression`` = significant and worse and beyond the
    metric's threshold (strictly).

    Tests:

    * latency percentiles (successful requests): each run's values are resampled
      independently and the difference of the percentiles recomputed; significant when
      the percentile interval excludes 0;
    * ``exact_match_abstain``: paired on the same ``(case_id, repeat)``; ``a``/``b`` are
      the means over those pairs. Paired bootstrap of the mean difference, and for 0/1
      scores McNemar's test must agree (as in ``paired_quality``);
    * ``error_rate``: Fisher's exact test (``p < 1 − confidence``), with Newcombe's score
      interval of the difference;
    * ``usd_per_1k_requests``: bootstrap of the mean cost per successful request; "no
      price" (not tested) when any successful request of either run is unpriced.

    ``thresholds`` override :data:`DEFAULT_THRESHOLDS` per metric: latency and cost ones
    are relative to A (0.10 = B more than 10 % worse), error rate and quality ones are
    absolute (0.02 = 2 points). Each metric is tested on its own at ``confidence``,
    without a multiple-comparison correction; the thresholds keep small, real but
    unimportant changes from being called regressions.

    Groups present in only one run are listed in ``attrs["notes"]``; metrics with no
    value in either run (e.g. quality in a latency suite) are left out. Deterministic
    for a given ``seed``.

    Raises:
        ValueError: for an unknown threshold metric or a negative threshold.
    """
    limits = _check_thresholds(thresholds)
    keys = ["suite", "load_level", "label"]
    groups_a = dict(iter(_measured(rows_a).groupby(keys, sort=True)))
    groups_b = dict(iter(_measured(rows_b).groupby(keys, sort=True)))
    notes = [
        f"only in {side}: {', '.join(map(str, key))}"
        for side, mine, other in (("A", groups_a, groups_b), ("B", groups_b, groups_a))
        for key in mine
        if key not in other
    ]
    out = []
    for key in sorted(set(groups_a) & set(groups_b), key=lambda k: tuple(map(str, k))):
        ga, gb = groups_a[key], groups_b[key]
        suite, level, provider = (str(k) for k in key)
        for metric in DIFF_METRICS:
            result: _Comparison | None
            if metric in _LATENCY:
                column, q = _LATENCY[metric]

                def percentile(x: FloatArray, q: float = q) -> FloatArray:
                    return np.asarray(np.percentile(x, q, axis=1), dtype=np.float64)

                result = _independent(
                    _values(_timed(ga), column, 1000.0),
                    _values(_timed(gb), column, 1000.0),
                    percentile,
                    confidence=confidence,
                    n_resamples=n_resamples,
                    seed=seed,
                    name=f"bootstrap (p{q:g})",
                )
            elif metric == "error_rate":
                result = _error_rates(ga, gb, confidence)
            elif metric == "usd_per_1k_requests":
                result = _cost(ga, gb, confidence=confidence, n_resamples=n_resamples, seed=seed)
            else:
                result = _quality(
                    ga, gb, metric, confidence=confidence, n_resamples=n_resamples, seed=seed
                )
            if result is None or (math.isnan(result.a) and math.isnan(result.b)):
                continue
            worse_abs, worse_rel = _worse_by(metric, result.a, result.b)
            threshold = limits[metric]
            beyond = (worse_rel if metric in RELATIVE_THRESHOLDS else worse_abs) > threshold
            if metric in _LATENCY and worse_abs <= MIN_LATENCY_CHANGE_MS:
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


# --------------------------------------------------------------------------- history


def history(
    rows: pd.DataFrame,
    metric: str,
    provider: str | None = None,
    *,
    slos: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> pd.DataFrame:
    """One summary metric (a column of :func:`summarize`) over many runs.

    Each run is summarised on its own (with ``slos[run_id]``, e.g. from
    :func:`harness.report.summary.run_slos`, so that ``goodput`` exists); its start time
    is the earliest ``started_at`` of its rows. ``provider`` matches the name with or
    without ``" (simulated)"``. A series (suite, load level, provider) where the metric is
    NaN in every run is left out; a NaN in some runs stays, as a gap (e.g. a run without
    a successful request).

    Returns:
        Columns ``run_id, started_at, provider, suite, load_level, value``, ordered by
        start time (then run id, suite, load level, provider).

    Raises:
        ValueError: for an unknown provider, or a metric that no run's summary has.
    """
    columns = ["run_id", "started_at", "provider", "suite", "load_level", "value"]
    if provider is not None:
        name = _base_name(provider)
        known = sorted({str(p) for p in rows["provider"].dropna()})
        if name not in known:
            raise ValueError(f"unknown provider {provider!r}; known: {', '.join(known)}")
        rows = rows[rows["provider"] == name]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    pieces = []
    available: set[str] = set()
    for run_id, run_rows in rows.groupby("run_id", sort=False):
        table = summarize(run_rows, (slos or {}).get(str(run_id)))
        available.update(str(c) for c in table.columns)
        if metric not in table.columns:
            continue
        pieces.append(
            pd.DataFrame(
                {
                    "run_id": str(run_id),
                    "started_at": run_rows["started_at"].min(),
                    "provider": table["provider"].astype(str).to_numpy(),
                    "suite": table["suite"].astype(str).to_numpy(),
                    "load_level": table["load_level"].astype(str).to_numpy(),
                    "value": pd.to_numeric(table[metric], errors="coerce").to_numpy(float),
                }
            )
        )
    if not pieces:
        have = ", ".join(sorted(available))
        raise ValueError(f"unknown metric {metric!r}; the summary has: {have}")
    series = pd.concat(pieces, ignore_index=True)
    defined = series.groupby(["provider", "suite", "load_level"])["value"].transform(
        lambda v: v.notna().any()
    )
    series = series[defined.astype(bool)]
    series = series.sort_values(
        ["started_at", "run_id", "suite", "load_level", "provider"], kind="stable"
    )
    return series[columns].reset_index(drop=True)


# --------------------------------------------------------------------------- adoption gate


class GateCheck(NamedTuple):
    """One check of :func:`adoption_gate`: its name, whether it passed, and why."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateResult:
    """The outcome of :func:`adoption_gate`."""

    decision: Literal["adopt", "do not adopt"]
    baseline: str
    candidate: str
    checks: list[GateCheck]
    confidence: str
    """What the quality check establishes, and at what confidence."""
    not_checked: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 to adopt, 1 not to (for CI)."""
        return 0 if self.decision == "adopt" else 1


def _resolve(rows: pd.DataFrame, name: str, role: str) -> str:
    labels = sorted({str(x) for x in rows["label"]})
    if name in labels:
        return name
    matches = [label for label in labels if _base_name(label) == _base_name(name)]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(f"unknown {role} {name!r}; providers: {', '.join(labels)}")


def _lower_bound(diffs: FloatArray, confidence: float) -> float:
    """One-sided lower confidence bound of the mean paired difference.

    Adjusted Wald interval with pseudo-pairs (½ at +1, ½ at −1, 1 at 0): for 0/1 scores
    this is exactly Agresti & Min (2005) for matched proportions, whose coverage is good
    at small n. Unlike a bootstrap, it does not claim certainty when every pair happens
    to agree: 20 identical answers cannot show a 2-point margin.
    """
    total = diffs.size + 2
    mean = float(diffs.sum()) / total
    second = (float(np.square(diffs).sum()) + 1.0) / total
    variance = max(second - mean * mean, 0.0) / total
    return mean - NormalDist().inv_cdf(confidence) * math.sqrt(variance)


def _quality_check(
    rows: pd.DataFrame,
    baseline: str,
    candidate: str,
    metric: str,
    max_drop: float,
    confidence: float,
) -> tuple[GateCheck, str]:
    name = "quality (non-inferiority)"
    scored = rows[rows["label"].isin([baseline, candidate])]
    scored = scored[scored[metric].notna()] if metric in scored.columns else scored.iloc[:0]
    if scored.empty:
        reason = f"no {metric} scores for the two providers (no rag_qa suite?)"
        return GateCheck(name, False, reason), f"No confidence statement: {reason}."
    # Repeats of one case are not independent evidence: average them, pair by case.
    per_case = scored.groupby(["suite", "load_level", "case_id", "label"])[metric].mean()
    wide = per_case.unstack("label")
    if baseline not in wide.columns or candidate not in wide.columns:
        missing = baseline if baseline not in wide.columns else candidate
        reason = f"no {metric} scores for {missing}"
        return GateCheck(name, False, reason), f"No confidence statement: {reason}."
    both = wide[[baseline, candidate]].dropna()
    if both.empty:
        reason = f"the two providers share no scored case for {metric}"
        return GateCheck(name, False, reason), f"No confidence statement: {reason}."
    diffs = both[candidate].to_numpy(dtype=float) - both[baseline].to_numpy(dtype=float)
    n = diffs.size
    lower = _lower_bound(diffs, confidence)
    passed = lower >= -max_drop
    detail = (
        f"{metric} {both[candidate].mean():.3f} vs {both[baseline].mean():.3f} on {n} paired"
        f" cases; difference {diffs.mean():+.3f}, {confidence:.0%} lower bound {lower:+.3f}"
        f" {'>=' if passed else '<'} {-max_drop:+.3f} allowed"
    )
    statement = (
        f"With {confidence:.0%} confidence (one-sided, Agresti–Min adjusted Wald, {n} paired"
        f" cases), {candidate} is at most {max(-lower, 0.0):.3f} worse than {baseline} on"
        f" {metric}"
        + (
            f"; the allowed drop is {max_drop:.3f}."
            if passed
            else f", which exceeds the allowed drop of {max_drop:.3f}: non-inferiority is"
            " not shown."
        )
    )
    return GateCheck(name, passed, detail), statement


def _latency_check(candidate_rows: pd.DataFrame, limit: float) -> GateCheck:
    name = "latency (E2E p95)"
    ok = _timed(candidate_rows)
    worst: tuple[float, str, str, float, float] | None = None
    groups = 0
    for (suite, level), group in ok.groupby(["suite", "load_level"], sort=True):
        values = _values(group, "e2e_s", 1000.0)
        if not values.size:
            continue
        groups += 1
        p95 = float(np.percentile(values, 95))
        if worst is None or p95 > worst[0]:
            low, high = percentile_ci(values, 95)
            worst = (p95, str(suite), str(level), low, high)
    if worst is None:
        return GateCheck(name, False, "no successful candidate request with an E2E time")
    p95, suite, level, low, high = worst
    where = f"suite {suite}" + (f", load {level}" if level != "-" else "")
    ci = f" (95% CI {low:.0f}–{high:.0f})" if not math.isnan(low) else ""
    scope = f", worst of {groups} suite/load groups" if groups > 1 else ""
    passed = p95 <= limit
    detail = (
        f"E2E p95 {p95:.0f} ms{ci} in {where}{scope} {'<=' if passed else '>'} limit {limit:g} ms"
    )
    return GateCheck(name, passed, detail)


def _cost_check(candidate_rows: pd.DataFrame, limit: float) -> GateCheck:
    name = "cost ($ per 1k requests)"
    ok = _ok(candidate_rows)
    if ok.empty:
        return GateCheck(name, False, "no successful candidate request to price")
    unpriced = int(ok["cost_usd"].isna().sum())
    if unpriced:
        return GateCheck(
            name, False, f"no price ({unpriced} of {len(ok)} successful requests unpriced)"
        )
    per_1k = float(ok["cost_usd"].astype(float).mean()) * 1000
    passed = per_1k <= limit
    return GateCheck(
        name, passed, f"${per_1k:.4g} per 1k requests {'<=' if passed else '>'} limit ${limit:g}"
    )


def adoption_gate(
    rows: pd.DataFrame,
    baseline: str,
    candidate: str,
    *,
    max_quality_drop: float = 0.02,
    confidence: float = 0.95,
    max_p95_latency_ms: float | None = None,
    max_usd_per_1k: float | None = None,
    suite: str | None = None,
    load_level: str | None = None,
    metric: str = PRIMARY_QUALITY,
) -> GateResult:
    """Should ``candidate`` replace ``baseline``? Adopt only if every check passes.

    * quality (always): non-inferiority on the cases both providers were scored on.
      Repeats of a case are averaged and cases paired by (suite, load level, case id);
      the one-sided lower confidence bound (at ``confidence``) of candidate − baseline
      must be ``>= -max_quality_drop``. The bound is the Agresti–Min adjusted Wald one
      (see ``_lower_bound``), pooled over every selected suite.
    * latency (when ``max_p95_latency_ms`` is set): the candidate's E2E p95 — the time a
      user waits for the whole answer — must be within the limit in every (suite, load
      level) group; the worst group is reported with its 95 % CI. Point estimate.
    * cost (when ``max_usd_per_1k`` is set): the candidate's mean cost per successful
      request × 1000 must be within the limit; any unpriced request fails ("no price").

    A check without data fails with the reason. ``suite``/``load_level`` restrict every
    check. Warm-up rows are ignored; latency and cost use successful requests.

    Raises:
        ValueError: for an unknown provider, suite or load level, the same provider twice,
            ``confidence`` outside (0.5, 1), or a negative ``max_quality_drop``.
    """
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    if not max_quality_drop >= 0:
        raise ValueError(f"max_quality_drop must be >= 0, got {max_quality_drop}")
    measured = _measured(rows)
    base = _resolve(measured, baseline, "baseline provider")
    cand = _resolve(measured, candidate, "candidate provider")
    if base == cand:
        raise ValueError(f"baseline and candidate are the same provider ({base!r})")
    for column, value in (("suite", suite), ("load_level", load_level)):
        if value is None:
            continue
        known = sorted({str(x) for x in measured[column]})
        if value not in known:
            raise ValueError(f"unknown {column} {value!r}; known: {', '.join(known)}")
        measured = measured[measured[column] == value]

    quality, statement = _quality_check(measured, base, cand, metric, max_quality_drop, confidence)
    checks = [quality]
    not_checked = []
    candidate_rows = measured[measured["label"] == cand]
    if max_p95_latency_ms is not None:
        checks.append(_latency_check(candidate_rows, max_p95_latency_ms))
    else:
        not_checked.append("latency (no E2E p95 limit given)")
    if max_usd_per_1k is not None:
        checks.append(_cost_check(candidate_rows, max_usd_per_1k))
    else:
        not_checked.append("cost (no $ per 1k requests limit given)")
    if checks[1:]:
        statement += " Latency and cost compare point estimates with their limits."
    adopt = all(check.passed for check in checks)
    return GateResult(
        decision="adopt" if adopt else "do not adopt",
        baseline=base,
        candidate=cand,
        checks=checks,
        confidence=statement,
        not_checked=not_checked,
    )


def render_gate(result: GateResult) -> str:
    """A short plain-text report: the decision, each check with its reason, the confidence."""
    head = "ADOPT" if result.decision == "adopt" else "DO NOT ADOPT"
    lines = [f"{head}: {result.candidate} (candidate) vs {result.baseline} (baseline)"]
    lines += [f"  {'PASS' if c.passed else 'FAIL'}  {c.name}: {c.detail}" for c in result.checks]
    lines += [f"  ----  not checked: {item}" for item in result.not_checked]
    failed = [c.name for c in result.checks if not c.passed]
    if failed:
        lines.append(f"Why not: {', '.join(failed)} failed.")
    lines.append(result.confidence)
    return "\n".join(lines)
