"""Should the candidate replace the baseline? :func:`adoption_gate` checks quality
(non-inferiority), latency and cost; :func:`render_gate` prints the verdict."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from harness import stats
from harness.report.compare import (
    base_name,
    clustered_sample,
    measured_rows,
    ok_rows,
    timed_rows,
)
from harness.report.summary import PRIMARY_QUALITY

CHECKS = ("quality", "latency", "cost")
"""The checks :func:`adoption_gate` can run (``harness gate --checks latency,cost``)."""
POWER = 0.8
"""The power at which :func:`cases_needed` sizes a quality check."""


def parse_checks(text: str) -> list[str]:
    """``"latency,cost"`` → ``["latency", "cost"]``; ValueError names an unknown check."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in CHECKS]
    if unknown or not names:
        raise ValueError(
            f"--checks: unknown check {', '.join(unknown) or '(none given)'}; known: "
            + ", ".join(CHECKS)
        )
    return list(dict.fromkeys(names))


def cases_needed(
    diffs: Collection[float] | np.ndarray,
    max_drop: float,
    confidence: float,
    power: float = POWER,
) -> int | None:
    """Paired cases a non-inferiority check needs to pass with probability ``power``, if the
    candidate − baseline difference per case is as observed; None if no number would do.

    The normal-approximation sample size of a paired difference (for 0/1 scores the
    paired-proportions, McNemar-type, formula): with ``d`` the mean paired difference and
    ``s²`` its per-case variance (``p10 + p01 − (p10 − p01)²`` for 0/1 scores, where ``p10``
    and ``p01`` are the shares of cases only the candidate / only the baseline got right),

        n = ⌈ (z_{confidence} + z_{power})² · s² / (d + max_drop)² ⌉.

    The lower bound ``d − z·s/√n`` then clears ``−max_drop`` in ``power`` of such runs.
    ``d <= −max_drop`` means the candidate already looks worse than the margin: more
    cases would only make that surer (None). Spread 0 (every case agrees) is sized with
    the bound's pseudo-pairs (variance 1/n), as the check itself does.
    """
    arr = np.asarray(list(diffs), dtype=np.float64)
    if arr.size == 0:
        return None
    d = float(arr.mean())
    gap = d + max_drop
    if gap <= 0:
        return None
    variance = float(arr.var()) or 1.0 / (arr.size + 2)
    z = NormalDist().inv_cdf(confidence) + NormalDist().inv_cdf(power)
    return max(1, math.ceil(z * z * variance / (gap * gap) - 1e-9))


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
    labels = sorted({str(x) for x in rows["label"].unique()})
    if name in labels:
        return name
    matches = [label for label in labels if base_name(label) == base_name(name)]
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
    if not passed:
        needed = cases_needed(diffs, max_drop, confidence)
        if needed is None:
            detail += (
                "; the observed difference is already below the margin: more cases would not"
                " show non-inferiority"
            )
        elif needed > n:
            detail += (
                f"; {n} cases cannot reach the margin: at the observed difference and spread"
                f" about {needed:,} paired cases would ({POWER:.0%} power)"
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
    ok = timed_rows(candidate_rows)
    worst: tuple[float, str, str, float, float] | None = None
    groups = 0
    for (suite, level), group in ok.groupby(["suite", "load_level"], sort=True):
        values, cases = clustered_sample(group, "e2e_s", 1000.0)
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
    ok = ok_rows(candidate_rows)
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
    checks: Collection[str] | None = None,
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

    ``checks`` (names from :data:`CHECKS`) chooses the checks; by default quality runs when
    the selection has ``metric`` scores at all (a latency/cost-only config has none), and
    latency and cost when their limit is given. A chosen check without its limit is an
    error. A failing quality check says how many cases it would need
    (:func:`cases_needed`). A check without data fails with the reason.
    ``suite``/``load_level`` restrict every check. Warm-up rows are ignored; latency and
    cost use successful requests.

    Raises:
        ValueError: for an unknown provider, suite or load level, the same provider twice,
            ``confidence`` outside (0.5, 1), or a negative ``max_quality_drop``.
    """
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    if not max_quality_drop >= 0:
        raise ValueError(f"max_quality_drop must be >= 0, got {max_quality_drop}")
    measured = measured_rows(rows)
    base = _resolve(measured, baseline, "baseline provider")
    cand = _resolve(measured, candidate, "candidate provider")
    if base == cand:
        raise ValueError(f"baseline and candidate are the same provider ({base!r})")
    for column, value in (("suite", suite), ("load_level", load_level)):
        if value is None:
            continue
        known = sorted({str(x) for x in measured[column].unique()})
        if value not in known:
            raise ValueError(f"unknown {column} {value!r}; known: {', '.join(known)}")
        measured = measured[measured[column] == value]

    wanted = _chosen_checks(measured, metric, checks, max_p95_latency_ms, max_usd_per_1k)
    results: list[GateCheck] = []
    not_checked = []
    statement = ""
    if "quality" in wanted:
        quality, statement = _quality_check(
            measured, base, cand, metric, max_quality_drop, confidence
        )
        results.append(quality)
    else:
        why = "not chosen" if checks is not None else f"no {metric} scores: no rag_qa suite"
        not_checked.append(f"quality ({why})")
        statement = "No quality statement: quality was not checked."
    candidate_rows = measured[measured["label"] == cand]
    if "latency" in wanted:
        assert max_p95_latency_ms is not None
        results.append(_latency_check(candidate_rows, max_p95_latency_ms))
    else:
        why = "not chosen" if checks is not None else "no E2E p95 limit given"
        not_checked.append(f"latency ({why})")
    if "cost" in wanted:
        assert max_usd_per_1k is not None
        results.append(_cost_check(candidate_rows, max_usd_per_1k))
    else:
        why = "not chosen" if checks is not None else "no $ per 1k requests limit given"
        not_checked.append(f"cost ({why})")
    if {"latency", "cost"} & set(wanted):
        statement += " Latency and cost compare point estimates with their limits."
    adopt = all(check.passed for check in results)
    return GateResult(
        decision="adopt" if adopt else "do not adopt",
        baseline=base,
        candidate=cand,
        checks=results,
        confidence=statement,
        not_checked=not_checked,
    )


def _chosen_checks(
    measured: pd.DataFrame,
    metric: str,
    checks: Collection[str] | None,
    max_p95_latency_ms: float | None,
    max_usd_per_1k: float | None,
) -> list[str]:
    """The checks to run: those chosen (each with its limit), or the default rule."""
    limits = {"latency": max_p95_latency_ms, "cost": max_usd_per_1k}
    flags = {"latency": "max_p95_latency_ms", "cost": "max_usd_per_1k"}
    if checks is not None:
        chosen = list(dict.fromkeys(checks))
        unknown = [c for c in chosen if c not in CHECKS]
        if unknown or not chosen:
            raise ValueError(f"unknown check {', '.join(unknown) or '(none)'}; known: {CHECKS}")
        for name in chosen:
            if name in limits and limits[name] is None:
                raise ValueError(f"the {name} check needs a limit ({flags[name]})")
        return chosen
    scored = metric in measured.columns and bool(measured[metric].notna().any())
    chosen = (["quality"] if scored else []) + [n for n in limits if limits[n] is not None]
    if not chosen:
        raise ValueError(
            f"nothing to check: no {metric} scores (no rag_qa suite) and no latency or cost"
            " limit (max_p95_latency_ms, max_usd_per_1k)"
        )
    return chosen


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
