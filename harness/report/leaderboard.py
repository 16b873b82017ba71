"""The leaderboard: one line per provider, a weighted score of quality, latency and cost,
an uncertainty-aware rank range, the Pareto front, and the providers' tags (filterable
with ``where``); :func:`parse_weights` and :func:`parse_where` are the command-line forms
of those options. Pure functions over the rows as ``read_runs(root, ids).to_pandas()``
returns them.

Leaderboard (from the rows of one run; a provider usually has several suites and load
levels):

* ``quality``: per scored suite, the mean over cases of the suite kind's primary score
  (:mod:`harness.report.quality`: rag_qa ``exact_match_abstain``, tool_call
  ``tool_exact``, structured ``field_accuracy``) averaged per case (repeats are one unit
  of evidence); then the unweighted mean over suites. Its 95 % interval is a bootstrap
  resampling cases within each suite.
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
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from harness import stats
from harness.report.compare import (
    NOISE_FLOORS,
    FloatArray,
    RowArrays,
    base_name,
    measured_rows,
)
from harness.report.quality import PRIMARY_SCORE, primary_scores

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
    found = [tags.get(p, tags.get(base_name(p), {})) for p in providers]
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


def _level_key(level: str) -> tuple[int, str, float, str]:
    """Order load levels lowest first: "-" (no load phase), then c=1 < c=4 < c=32."""
    if level == "-":
        return (0, "", 0.0, level)
    prefix, _, number = level.partition("=")
    try:
        return (1, prefix, float(number), level)
    except ValueError:
        return (2, prefix, 0.0, level)


def _reference_levels(
    arrays: RowArrays, ok: npt.NDArray[np.int64], notes: list[str]
) -> dict[str, str]:
    """Per suite, the lowest load level at which every provider of that suite has a
    successful request: the one latency figure that compares (c=1 is never pooled with
    c=32). A suite whose providers share no level is left out of latency, with a note.
    ``ok``: the row numbers of the successful requests with a TTFT."""
    levels: dict[str, str] = {}
    per_suite: dict[Any, list[set[str]]] = {}
    for (suite, _), rows in sorted(arrays.groups(["suite", "label"], ok).items()):
        level_codes, names = arrays.codes("load_level")
        seen = np.bincount(level_codes[rows] + 1, minlength=len(names) + 1)
        present = np.flatnonzero(seen) - 1
        # A missing level (none after measured_rows' fill) reads as "nan", as astype(str).
        per_suite.setdefault(suite, []).append(
            {str(names[c]) if c >= 0 else "nan" for c in present}
        )
    for suite, per_provider in per_suite.items():
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
    """Quality, latency, cost and error rate per provider, with bootstrap distributions.

    Groups are index arrays into the measured rows' numpy columns (:class:`RowArrays`),
    so that a million rows are never copied per provider, suite and level."""
    rng = np.random.default_rng(seed)
    arrays = RowArrays(measured)
    ttft_ok = np.flatnonzero(arrays.ok & ~np.isnan(arrays.floats("ttft_s")))
    levels = _reference_levels(arrays, ttft_ok, notes)
    if any(level != "-" for level in levels.values()):
        notes.append(
            "latency at each suite's lowest load level shared by every provider: "
            + ", ".join(f"{suite} {level}" for suite, level in levels.items())
        )
    # Each suite's own primary score (a tool_call suite's tool_exact, ...); per_case
    # keeps only the scored rows, so only those are handed to it.
    scores = primary_scores(measured).to_numpy(dtype=np.float64)
    has_score = np.flatnonzero(~np.isnan(scores))
    scored = (
        measured[["suite", "case_id", "label"]]
        .iloc[has_score]
        .assign(**{PRIMARY_SCORE: scores[has_score]})
    )
    quality_cases = stats.per_case(scored, PRIMARY_SCORE, "label", case=("suite", "case_id"))
    boot: dict[str, dict[str, FloatArray]] = {"quality": {}, "latency": {}, "cost": {}}
    suite_codes, suite_names = arrays.codes("suite")
    level_codes, level_names = arrays.codes("load_level")
    # The reference levels are text (as astype(str) reads them): back to codes once.
    suite_code = {str(v): i for i, v in reversed(list(enumerate(suite_names)))}
    level_code = {"nan": -1} | {str(v): i for i, v in reversed(list(enumerate(level_names)))}
    lines = []
    for (label,), rows in sorted(arrays.groups(["label"]).items()):
        name = str(label)
        mine = rows[arrays.ok[rows]]
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
        mine_suites, mine_levels = suite_codes[mine], level_codes[mine]
        for suite, level in levels.items():
            line = mine[(mine_suites == suite_code[suite]) & (mine_levels == level_code[level])]
            values, cases = arrays.sample(line, "ttft_s", 1000.0)
            if not values.size:
                continue
            ttfts.append(float(np.percentile(values, 50)))
            ttft_boot.append(
                stats.bootstrap_distribution(
                    values, stats.Percentile(50), n_resamples, rng, clusters=cases
                )
            )
            e2e, _ = arrays.sample(line, "e2e_s", 1000.0)
            e2es.append(float(np.percentile(e2e, 95)) if e2e.size else math.nan)
        if ttft_boot:
            boot["latency"][name] = np.median(np.vstack(ttft_boot), axis=0)
        # Cost: mean per successful request per suite, mean over suites; one unpriced
        # request makes it unknown ("no price"), never smaller.
        costs, cost_boot = [], []
        for _, line in sorted(arrays.groups(["suite"], mine).items()):
            values, cases = arrays.sample(line, "cost_usd", 1000.0)
            if values.size < line.size:
                costs = [math.nan]
                break
            costs.append(float(values.mean()))
            cost_boot.append(
                stats.bootstrap_distribution(values, np.mean, n_resamples, rng, clusters=cases)
            )
        price = float(np.mean(costs)) if costs else math.nan
        if not math.isnan(price):
            boot["cost"][name] = np.mean(np.vstack(cost_boot), axis=0)
        seen = np.flatnonzero(np.bincount(suite_codes[rows] + 1, minlength=len(suite_names) + 1))
        lines.append(
            {
                "provider": name,
                "quality": quality,
                "quality_ci_low": q_low,
                "quality_ci_high": q_high,
                "ttft_p50_ms": float(np.median(ttfts)) if ttfts else math.nan,
                "e2e_p95_ms": float(np.nanmedian(e2es)) if e2es else math.nan,
                "usd_per_1k_requests": price,
                "error_rate": float((~arrays.ok[rows]).mean()),
                "suites": frozenset(str(suite_names[c - 1]) if c else "nan" for c in seen),
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
    measured = measured_rows(rows) if len(rows) else pd.DataFrame(columns=["label"])
    providers = sorted({str(p) for p in measured["label"].unique()})
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
