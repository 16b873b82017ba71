"""Decisions from stored runs: a leaderboard, run-to-run regressions, history, an adoption gate.

Pure functions over pandas DataFrames: the per-request rows as
``read_runs(root, ids).to_pandas()`` returns them. Nothing here reads files or prints;
every statistic comes from :mod:`harness.scoring.stats`.

* :func:`leaderboard`: one line per provider, a weighted score of quality, latency and
  cost, an uncertainty-aware rank range, the Pareto front, and the providers' tags
  (filterable with ``where``).
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

Leaderboard (from the rows of one run; a provider usually has several suites and load
levels):

* ``quality``: per RAG suite, the mean over cases of ``exact_match_abstain`` averaged per
  case (repeats are one unit of evidence); then the unweighted mean over suites. Its
  95 % interval is a bootstrap resampling cases within each suite.
* ``ttft_p50_ms`` (the latency dimension) and ``e2e_p95_ms``: never pooled across load
  levels. Per suite, the lowest load level at which every provider of that suite has a
  successful request ("-" when the suite has no load phase, else c=1 before c=32), then
  the median over suites; the levels used are in ``attrs["notes"]``.
* ``usd_per_1k_requests``: the mean cost per successful request per suite, × 1000, then
  the mean over suites (a sum would grow with the number of suites). One unpriced
  request makes it unknown ("no price"), as in the summary.
* ``error_rate``: all errors over all requests.

Score: per used dimension, relative to the best provider — quality / best quality, best
latency / latency, best cost / cost — so 0.80 vs 0.79 is 1 vs 0.99, not min–max's 1 vs
0; a provider not significantly different from the best on that dimension scores 1
(a difference within noise is a tie). ``score`` is the weighted sum (weights normalised
to sum 1; a dimension with weight 0 is not used, one that no provider has is dropped and
the weights renormalised, said in ``attrs["notes"]``).

Rank: A is above B when the weighted difference of their dimension scores, summed over
only the dimensions on which A and B differ significantly, is positive. Significant
means: quality — the paired exact sign test (McNemar's for 0/1 scores) on their shared
cases and the paired bootstrap agree at ``confidence``; latency — the bootstrap interval
of the TTFT difference (cases resampled within each provider) excludes 0 and the gap
exceeds the 5 ms noise floor of :data:`NOISE_FLOORS`; cost — the bootstrap interval of
the difference excludes 0. A provider's best rank is 1 + the number of providers above
it, its worst the number of providers not below it: ``rank`` is ``"1"`` or ``"1–2"``,
with ``rank_min``/``rank_max`` as numbers to sort on. A 5× slower provider whose quality
lead its own paired test calls "no significant difference" does not rank first. A
provider missing a used dimension gets score NaN and rank ``"-"`` after every scored
one, and the ``missing`` column says why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from harness.report.summary import PRIMARY_QUALITY, summarize
from harness.scoring import stats

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DEFAULT_WEIGHTS",
    "DIFF_METRICS",
    "DIMENSIONS",
    "NOISE_FLOORS",
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
    "rank_min",
    "rank_max",
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


def _numeric(table: pd.DataFrame, column: str) -> pd.Series[float]:
    if column not in table.columns:
        return pd.Series(np.nan, index=table.index, dtype=float)
    return pd.to_numeric(table[column], errors="coerce").astype(float)


def _level_key(level: str) -> tuple[int, str, float, str]:
    """Order load levels lowest first: "-" (no load phase), then c=1 < c=4 < c=32."""
    if level == "-":
        return (0, "", 0.0, level)
    prefix, _, number = level.partition("=")
    try:
        return (1, prefix, float(number), level)
    except ValueError:
        return (2, prefix, 0.0, level)


def _reference_levels(ok: pd.DataFrame, notes: list[str]) -> dict[str, str]:
    """Per suite, the lowest load level at which every provider of that suite has a
    successful request: the one latency figure that compares (c=1 is never pooled with
    c=32). A suite whose providers share no level is left out of latency, with a note."""
    levels: dict[str, str] = {}
    for suite, group in ok.groupby("suite", sort=True):
        per_provider = [set(g["load_level"].astype(str)) for _, g in group.groupby("label")]
        shared = set.intersection(*per_provider) if per_provider else set()
        if shared:
            levels[str(suite)] = min(shared, key=_level_key)
        else:
            notes.append(f"latency: suite {suite} left out, its providers share no load level")
    return levels


class _Figures(NamedTuple):
    """The leaderboard's per-provider figures and their bootstrap distributions."""

    board: pd.DataFrame
    boot: dict[str, dict[str, FloatArray]]
    """Dimension → provider → bootstrap distribution of its figure (latency, cost)."""
    quality_cases: pd.DataFrame
    """Per-case quality (rows: suite, case id; columns: providers), for paired tests."""


def _figures(measured: pd.DataFrame, n_resamples: int, seed: int, notes: list[str]) -> _Figures:
    """Quality, latency, cost and error rate per provider, with bootstrap distributions."""
    rng = np.random.default_rng(seed)
    ok = _ok(measured)
    levels = _reference_levels(ok[ok["ttft_s"].notna()], notes)
    if any(level != "-" for level in levels.values()):
        notes.append(
            "latency at each suite's lowest load level shared by every provider: "
            + ", ".join(f"{suite} {level}" for suite, level in levels.items())
        )
    quality_cases = stats.per_case(measured, PRIMARY_QUALITY, "label", case=("suite", "case_id"))
    boot: dict[str, dict[str, FloatArray]] = {"quality": {}, "latency": {}, "cost": {}}
    lines = []
    for label, rows in measured.groupby("label", sort=True):
        name = str(label)
        mine = _ok(rows)
        # Quality: mean per-case score per suite (resampling cases), mean over suites.
        suites_q = (
            [
                quality_cases.loc[suite, name].dropna().to_numpy(dtype=np.float64)
                for suite in quality_cases.index.get_level_values("suite").unique()
            ]
            if name in quality_cases.columns
            else []
        )
        suites_q = [v for v in suites_q if v.size]
        quality = float(np.mean([v.mean() for v in suites_q])) if suites_q else math.nan
        q_low = q_high = math.nan
        if suites_q:
            dist = np.mean(
                [stats.bootstrap_distribution(v, np.mean, n_resamples, rng) for v in suites_q],
                axis=0,
            )
            boot["quality"][name] = dist
            q_low, q_high = stats.percentile_interval(dist, 0.95)
        # Latency: TTFT p50 (clustered by case) at each suite's reference level, median
        # over suites; E2E p95 on the same lines.
        ttfts, e2es, ttft_boot = [], [], []
        for suite, level in levels.items():
            line = mine[(mine["suite"] == suite) & (mine["load_level"].astype(str) == level)]
            values, cases = _sample(line, "ttft_s", 1000.0)
            if not values.size:
                continue
            ttfts.append(float(np.percentile(values, 50)))
            ttft_boot.append(
                stats.bootstrap_distribution(
                    values, stats.Percentile(50), n_resamples, rng, clusters=cases
                )
            )
            e2e = _values(line, "e2e_s", 1000.0)
            e2es.append(float(np.percentile(e2e, 95)) if e2e.size else math.nan)
        if ttft_boot:
            boot["latency"][name] = np.median(np.vstack(ttft_boot), axis=0)
        # Cost: mean per successful request per suite, mean over suites; one unpriced
        # request makes it unknown ("no price"), never smaller.
        costs, cost_boot = [], []
        for _, line in mine.groupby("suite", sort=True):
            values, cases = _sample(line, "cost_usd", 1000.0)
            if values.size < len(line):
                costs = [math.nan]
                break
            costs.append(float(values.mean()))
            cost_boot.append(
                stats.bootstrap_distribution(values, np.mean, n_resamples, rng, clusters=cases)
            )
        price = float(np.mean(costs)) if costs else math.nan
        if not math.isnan(price):
            boot["cost"][name] = np.mean(np.vstack(cost_boot), axis=0)
        lines.append(
            {
                "provider": name,
                "quality": quality,
                "quality_ci_low": q_low,
                "quality_ci_high": q_high,
                "ttft_p50_ms": float(np.median(ttfts)) if ttfts else math.nan,
                "e2e_p95_ms": float(np.nanmedian(e2es)) if e2es else math.nan,
                "usd_per_1k_requests": price,
                "error_rate": float((rows["status"] != "ok").mean()),
                "suites": frozenset(str(s) for s in rows["suite"]),
            }
        )
    return _Figures(pd.DataFrame(lines), boot, quality_cases)


class _Tester:
    """Is provider A significantly different from B on a dimension? (memoised)

    * quality: the paired comparison on their shared cases (repeats averaged per case):
      the exact sign test (McNemar for 0/1 scores) and the paired bootstrap must agree;
    * latency: the interval of the difference of their bootstrapped TTFT figures
      excludes 0 *and* the difference exceeds the clock's noise floor (5 ms);
    * cost: the interval of the difference of their bootstrapped costs excludes 0.
    """

    def __init__(self, figures: _Figures, confidence: float, n_resamples: int, seed: int):
        self.figures = figures
        self.confidence = confidence
        self.n_resamples = n_resamples
        self.seed = seed
        self.points = figures.board.set_index("provider")
        self._memo: dict[tuple[str, str, str], bool] = {}

    def differs(self, dim: str, a: str, b: str) -> bool:
        first, second = sorted((a, b))
        key = (dim, first, second)
        if key not in self._memo:
            self._memo[key] = self._test(dim, a, b)
        return self._memo[key]

    def _test(self, dim: str, a: str, b: str) -> bool:
        if dim == "quality":
            cases = self.figures.quality_cases[[a, b]].dropna()
            if len(cases) < 2:
                return False
            test = stats.compare_paired(
                cases[a].to_numpy(),
                cases[b].to_numpy(),
                confidence=self.confidence,
                n_resamples=self.n_resamples,
                seed=self.seed,
            )
            return test["significant"]
        dist_a, dist_b = self.figures.boot[dim].get(a), self.figures.boot[dim].get(b)
        if dist_a is None or dist_b is None:
            return False
        low, high = stats.percentile_interval(dist_a - dist_b, self.confidence)
        if not (low > 0 or high < 0):
            return False
        if dim == "latency":
            ttft = self.points["ttft_p50_ms"].astype(float)
            gap = abs(float(ttft[a]) - float(ttft[b]))
            return gap > NOISE_FLOORS["ttft_p50_ms"]
        return True


def _relative(value: float, best: float, higher_is_better: bool) -> float:
    """The score of a value relative to the best one, in [0, 1]."""
    if higher_is_better:
        return value / best if best > 0 else 1.0
    if value <= 0:
        return 1.0
    return best / value


def _rank_ranges(
    scores: pd.DataFrame, used: Mapping[str, float], tester: _Tester
) -> tuple[dict[str, int], dict[str, int]]:
    """Best and worst rank of every scored provider.

    A is above B when the weighted score difference over the dimensions on which the two
    differ significantly is positive; differences within noise count as ties. A's best
    rank is 1 + the number of providers above it, its worst the number not below it.
    """
    names = list(scores.index)
    above: dict[str, set[str]] = {name: set() for name in names}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            lead = sum(
                weight * (float(scores[dim][a]) - float(scores[dim][b]))
                for dim, weight in used.items()
                if tester.differs(dim, a, b)
            )
            if lead > 1e-12:
                above[b].add(a)
            elif lead < -1e-12:
                above[a].add(b)
    below = {name: sum(name in above[other] for other in names) for name in names}
    best = {name: 1 + len(above[name]) for name in names}
    worst = {name: len(names) - below[name] for name in names}
    return best, worst


def leaderboard(
    rows: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    tags: Mapping[str, Mapping[str, Any]] | None = None,
    where: Mapping[str, str] | None = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One line per provider, best first: a weighted score of quality, latency and cost,
    and a rank range that says which differences are real.

    Args:
        rows: the per-request rows of one run (``read_runs(...).to_pandas()``).
        weights: per dimension (``quality``, ``latency`` = TTFT p50, ``cost`` = $ per 1k
            requests); unnamed dimensions get 0; default 0.5/0.3/0.2. Normalised to sum 1.
        tags: provider name → tags (see :func:`tags_from_manifest`); a label ending in
            ``" (simulated)"`` is matched by the name without the suffix. One column per
            tag key is added.
        where: keep providers whose tag equals the value (text, case-insensitive;
            ``true``/``false`` match booleans). Scores and ranks are among those kept.
        confidence, n_resamples, seed: of the bootstrap and the tests behind the ranks.

    Returns:
        Columns ``rank, rank_min, rank_max, provider, score, quality, [quality_ci_low,
        quality_ci_high], ttft_p50_ms, e2e_p95_ms, usd_per_1k_requests, error_rate,
        pareto, missing`` and the tag columns, ordered by ``rank_min``, ``rank_max``, then
        score. ``rank`` is ``"1"`` or a range ``"1–2"`` (``"-"`` for an unscored
        provider). ``attrs["weights"]`` holds the weights used, ``attrs["notes"]`` what was
        dropped or should be known. The rule is in the module docstring.

    Raises:
        ValueError: for bad weights, a ``where`` key that no provider has as a tag, or a
            summary table instead of rows.
    """
    if "requests" in rows.columns and "status" not in rows.columns:
        raise ValueError(
            "leaderboard takes the per-request rows (read_runs(...).to_pandas()), not the"
            " summary table: its rank ranges resample cases"
        )
    wanted = _check_weights(weights if weights is not None else DEFAULT_WEIGHTS)
    notes: list[str] = []
    measured = _measured(rows) if len(rows) else pd.DataFrame(columns=["label"])
    providers = sorted({str(p) for p in measured["label"]})
    tag_values = _tag_columns(providers, tags or {})
    if where:
        if tags is None:
            raise ValueError("where: no provider tags were given to filter on")
        mask = _where_mask(tag_values, where, len(providers))
        kept = {p for p, m in zip(providers, mask, strict=True) if m}
        measured = measured[measured["label"].isin(kept)]
        tag_values = {
            k: [v for v, m in zip(vs, mask, strict=True) if m] for k, vs in tag_values.items()
        }
        if not kept:
            notes.append("no provider matches " + ", ".join(f"{k}={v}" for k, v in where.items()))
    if measured.empty:
        empty = pd.DataFrame(columns=[*_BOARD_COLUMNS, *tag_values])
        empty.attrs.update(weights=wanted, notes=notes)
        return empty

    figures = _figures(measured, n_resamples, seed, notes)
    board = figures.board
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

    # Per dimension: relative to the best provider; one within noise of the best scores 1.
    tester = _Tester(figures, confidence, n_resamples, seed)
    dim_scores = pd.DataFrame(index=board["provider"], dtype=float)
    missing: list[list[str]] = [[] for _ in range(len(board))]
    for dim in used:
        column, higher, reason = _DIMENSION_COLUMNS[dim]
        values = board.set_index("provider")[column]
        present = values.dropna()
        best_name = str(present.idxmax() if higher else present.idxmin())
        best = float(present[best_name])
        dim_scores[dim] = [
            math.nan
            if math.isnan(value)
            else 1.0
            if name == best_name or not tester.differs(dim, str(name), best_name)
            else _relative(float(value), best, higher)
            for name, value in values.items()
        ]
        for i in np.flatnonzero(values.isna().to_numpy()):
            missing[i].append(reason)
    score = sum((weight * dim_scores[dim] for dim, weight in used.items()), start=0.0)
    board["score"] = np.asarray(score, dtype=np.float64) if used else np.full(len(board), math.nan)
    board["missing"] = ["; ".join(m) if m else None for m in missing]

    scored = board["score"].notna().to_numpy()
    names = [str(p) for p in board.loc[scored, "provider"]]
    best_rank, worst_rank = _rank_ranges(dim_scores.loc[names], used, tester) if used else ({}, {})
    unranked = len(names) + 1
    board["rank_min"] = [best_rank.get(str(p), unranked) for p in board["provider"]]
    board["rank_max"] = [worst_rank.get(str(p), unranked) for p in board["provider"]]
    board["rank"] = [
        "-" if str(p) not in best_rank else f"{lo}" if lo == hi else f"{lo}–{hi}"
        for p, lo, hi in zip(board["provider"], board["rank_min"], board["rank_max"], strict=True)
    ]
    pareto = pd.Series(False, index=board.index)
    if used and scored.any():
        maximize = ["quality"] if "quality" in used else []
        minimize = [_DIMENSION_COLUMNS[d][0] for d in ("latency", "cost") if d in used]
        pareto[scored] = pareto_front(board[scored], maximize=maximize, minimize=minimize)
    board["pareto"] = pareto.astype(bool)
    for key, tag_column in tag_values.items():
        name = key if key not in _BOARD_COLUMNS else f"tag_{key}"
        board[name] = tag_column

    columns = [
        c for c in _BOARD_COLUMNS if not c.startswith("quality_ci") or board[c].notna().any()
    ]
    tag_names = [k if k not in _BOARD_COLUMNS else f"tag_{k}" for k in tag_values]
    board["_order"] = -board["score"].fillna(-math.inf)
    board = board.sort_values(
        ["rank_min", "rank_max", "_order", "provider"], kind="stable"
    ).reset_index(drop=True)
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


def _sample(group: pd.DataFrame, column: str, scale: float = 1.0) -> tuple[FloatArray, Any]:
    """A column's values and each value's case id, the cluster for the bootstrap."""
    if column not in group.columns:
        return np.empty(0, dtype=np.float64), None
    values = pd.to_numeric(group[column], errors="coerce").dropna()
    cases = group.loc[values.index, "case_id"].to_numpy() if "case_id" in group else None
    return values.to_numpy(dtype=np.float64) * scale, cases


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
    a: tuple[FloatArray, Any],
    b: tuple[FloatArray, Any],
    stat: stats.Statistic,
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
    name: str,
) -> _Comparison:
    """Bootstrap each run's values independently (clustered by case when a case has
    repeats); CI of stat(B) − stat(A)."""
    (va, cases_a), (vb, cases_b) = a, b
    point_a = float(stat(va)) if va.size else math.nan
    point_b = float(stat(vb)) if vb.size else math.nan
    if va.size < 2 or vb.size < 2:
        return _untested(point_a, point_b, "too few values", va.size, vb.size)
    boot = stats.bootstrap_difference(
        vb, va, stat, clusters_a=cases_b, clusters_b=cases_a, n_resamples=n_resamples, seed=seed
    )
    low, high = stats.percentile_interval(boot, confidence)
    return _Comparison(
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


def _error_rates(ga: pd.DataFrame, gb: pd.DataFrame, confidence: float) -> _Comparison:
    n_a, n_b = len(ga), len(gb)
    e_a, e_b = int((ga["status"] != "ok").sum()), int((gb["status"] != "ok").sum())
    if not n_a or not n_b:
        return _untested(math.nan, math.nan, "no requests", n_a, n_b)
    # Newcombe's hybrid score interval of pb − pa (from Wilson intervals): sensible at 0.
    low, high = stats.newcombe_interval(e_b, n_b, e_a, n_a, confidence)
    p = stats.fisher_exact(e_a, n_a, e_b, n_b)
    return _Comparison(
        e_a / n_a, e_b / n_b, low, high, p, "Fisher exact", n_a, n_b, p < 1.0 - confidence
    )


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
        return _untested(a, b, "no paired cases", len(both), len(both))
    test = stats.compare_paired(
        both["b"].to_numpy(),
        both["a"].to_numpy(),
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )
    n = test["n"]
    return _Comparison(
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


def _cost(
    ga: pd.DataFrame, gb: pd.DataFrame, *, confidence: float, n_resamples: int, seed: int
) -> _Comparison:
    ok_a, ok_b = _ok(ga), _ok(gb)
    unpriced_a = bool(ok_a["cost_usd"].isna().any()) or ok_a.empty
    unpriced_b = bool(ok_b["cost_usd"].isna().any()) or ok_b.empty
    sample_a, sample_b = _sample(ok_a, "cost_usd", 1000.0), _sample(ok_b, "cost_usd", 1000.0)
    if unpriced_a or unpriced_b:
        a = math.nan if unpriced_a else float(sample_a[0].mean())
        b = math.nan if unpriced_b else float(sample_b[0].mean())
        return _untested(a, b, "no price", len(ok_a), len(ok_b))
    return _independent(
        sample_a,
        sample_b,
        np.mean,
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
                result = _independent(
                    _sample(_timed(ga), column, 1000.0),
                    _sample(_timed(gb), column, 1000.0),
                    stats.Percentile(q),
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
    wide = stats.per_case(scored, metric, "label", case=("suite", "case_id"))
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
    lower = stats.agresti_min_lower_bound(diffs, confidence)
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
        values, cases = _sample(group, "e2e_s", 1000.0)
        if not values.size:
            continue
        groups += 1
        p95 = float(np.percentile(values, 95))
        if worst is None or p95 > worst[0]:
            low, high = stats.percentile_ci(values, 95, clusters=cases)
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
