"""Which score column is a suite kind's quality: the one table reports consult.

Reports do not import suites (they read only the results root), so the score columns of
each kind are named here. The **primary** column is what "correct" means for that kind:
the per-provider mean with its bootstrap CI, the paired tests between providers on the
same cases, $ per correct answer (cost / sum of the primary score) and the leaderboard's
quality dimension all use it. The **secondary** columns get a mean and a CI in the
summary too. A row whose kind is not in the table (older rows, a kind without scores)
falls back to rag_qa's columns, which such rows do not have: it adds no quality.

Also :func:`structured_latency`: structured vs free-form answers to the same prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "PRIMARY_SCORE",
    "QUALITY_BY_KIND",
    "SuiteQuality",
    "group_kind",
    "primary_by_suite",
    "primary_label",
    "primary_metric",
    "primary_scores",
    "quality_columns",
    "structured_latency",
    "tool_timing",
]


@dataclass(frozen=True)
class SuiteQuality:
    """A kind's primary 0/1 (or [0, 1]) score column and all its score columns."""

    primary: str
    columns: tuple[str, ...]
    """Every score column of the kind (the primary among them), in the summary's order."""
    label: str
    """How the compact summary names the primary score."""

    @property
    def secondary(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c != self.primary)


QUALITY_BY_KIND: dict[str, SuiteQuality] = {
    # The score that counts a correct abstention on an unanswerable case as correct.
    "rag_qa": SuiteQuality(
        primary="exact_match_abstain",
        columns=(
            "exact_match",
            "f1",
            "exact_match_abstain",
            "f1_abstain",
            "contains",
            "regex_match",
            "judge_correctness",
        ),
        label="EM (abstain)",
    ),
    # The expected call(s) exactly (harness.scoring.tool_calls).
    "tool_call": SuiteQuality(
        primary="tool_exact",
        columns=("tool_exact", "tool_valid", "tool_arg_precision", "tool_arg_recall"),
        label="tool exact",
    ),
    # Share of expected fields right: 0 for an answer that is not JSON.
    "structured": SuiteQuality(
        primary="field_accuracy",
        columns=("field_accuracy", "json_valid", "schema_valid"),
        label="field accuracy",
    ),
    # Per turn: the turn's regex if it has one, else its reference (harness.suites.chat).
    "chat": SuiteQuality(
        primary="turn_score",
        columns=("turn_score", "exact_match", "f1", "contains", "regex_match"),
        label="turn score",
    ),
}
_FALLBACK = QUALITY_BY_KIND["rag_qa"]


def _kind(kind: object) -> SuiteQuality:
    return QUALITY_BY_KIND.get(str(kind), _FALLBACK) if kind is not None else _FALLBACK


def primary_metric(kind: object) -> str:
    """The primary score column of a suite kind (rag_qa's for an unknown kind)."""
    return _kind(kind).primary


def quality_columns(kind: object) -> tuple[str, ...]:
    """Every score column of a suite kind, in the summary's order."""
    return _kind(kind).columns


PRIMARY_SCORE = "_primary_score"
"""The column :func:`primary_scores` is stored under when a report adds it to rows."""


def primary_label(metric: str) -> str:
    """The compact summary's name of a primary score column."""
    return next((q.label for q in QUALITY_BY_KIND.values() if q.primary == metric), metric)


def primary_by_suite(rows: pd.DataFrame) -> dict[Any, str]:
    """Suite → the primary score column of its kind."""
    if "suite" not in rows:
        return {}
    # Each suite's first row with a kind, by position (as group_kind of its groupby group,
    # in the groupby's order of first appearance), without splitting a million rows.
    codes, suites = pd.factorize(rows["suite"])
    kinds: list[object] = [None] * len(suites)
    if "suite_kind" in rows:
        known = np.flatnonzero(rows["suite_kind"].notna().to_numpy() & (codes >= 0))
        present, first = np.unique(codes[known], return_index=True)
        for code, row in zip(present, known[first], strict=True):
            kinds[int(code)] = rows["suite_kind"].iloc[int(row)]
    return {suite: primary_metric(kind) for suite, kind in zip(suites, kinds, strict=True)}


def group_kind(group: pd.DataFrame) -> object:
    """The suite kind of a group of rows of one suite (None for rows without one)."""
    if "suite_kind" not in group or not group["suite_kind"].notna().any():
        return None
    return group["suite_kind"].dropna().iloc[0]


def primary_scores(rows: pd.DataFrame) -> pd.Series:
    """Each row's primary score, by its suite kind (NaN where it has none)."""
    out = np.full(len(rows), np.nan)
    groups: list[tuple[int, str]] = []
    codes = np.full(len(rows), -1)  # -1: no kind (NaN, or rows from before suite_kind)
    if "suite_kind" in rows:
        codes, kinds = pd.factorize(rows["suite_kind"])
        groups = [(code, primary_metric(kind)) for code, kind in enumerate(kinds)]
    groups.append((-1, primary_metric(None)))
    for code, column in groups:
        if column in rows:
            mask = codes == code
            out[mask] = rows[column].to_numpy(dtype=np.float64, na_value=np.nan)[mask]
    return pd.Series(out, index=rows.index, dtype=np.float64)


def tool_timing(timed: pd.DataFrame) -> dict[str, Any]:
    """Time to the first tool-call token (p50, p95, ms) of a summary line's measured rows;
    empty when none of them called a tool (an answer that only calls tools has no TTFT)."""
    if "ttft_tool_s" not in timed or not timed["ttft_tool_s"].notna().any():
        return {}
    values = timed["ttft_tool_s"].dropna().to_numpy(dtype=float) * 1000
    values = values[np.isfinite(values)]
    if not len(values):
        return {}
    return {
        "ttft_tool_p50_ms": float(np.percentile(values, 50)),
        "ttft_tool_p95_ms": float(np.percentile(values, 95)),
    }


def structured_latency(rows: pd.DataFrame) -> pd.DataFrame:
    """Structured vs free-form answers to the same prompts, side by side.

    One line per (structured suite, provider) that has free-form twins (suite
    ``<name>.free_form``, see ``compare_free_form``): TTFT and E2E p50 (ms) and mean
    output tokens of each, over the cases both answered successfully, and the ratios
    structured / free-form. Warm-up rows are left out.
    """
    needed = {"suite", "suite_kind", "structured_mode", "provider", "case_id", "status"}
    if not needed <= set(rows.columns) or not (rows["structured_mode"] == "free_form").any():
        return pd.DataFrame()
    rows = rows[(rows["suite_kind"] == "structured") & (rows["status"] == "ok")]
    if "warmup" in rows:
        rows = rows[rows["warmup"].fillna(False).astype(bool) == False]  # noqa: E712
    free = rows[rows["structured_mode"] == "free_form"]
    out: list[dict[str, Any]] = []
    for (suite, provider), twins in free.groupby(["suite", "provider"], sort=True):
        base = str(suite).removesuffix(".free_form")
        mine = rows[(rows["suite"] == base) & (rows["provider"] == provider)]
        cases = sorted(set(mine["case_id"]) & set(twins["case_id"]))
        if not cases:
            continue
        line: dict[str, Any] = {"suite": base, "provider": provider, "cases": len(cases)}
        if "structured_mode" in mine and mine["structured_mode"].notna().any():
            line["mode"] = str(mine["structured_mode"].dropna().iloc[0])
        for name, part in (("structured", mine), ("free_form", twins)):
            part = part[part["case_id"].isin(cases)]
            for metric in ("ttft_s", "e2e_s"):
                values = part[metric].dropna().to_numpy(dtype=float) * 1000
                key = f"{name}_{metric[:-2]}_p50_ms"
                line[key] = float(np.percentile(values, 50)) if len(values) else None
            tokens = part["output_tokens"].dropna() if "output_tokens" in part else pd.Series()
            line[f"{name}_output_tokens_mean"] = float(tokens.mean()) if len(tokens) else None
        for metric in ("ttft", "e2e"):
            s, f = line[f"structured_{metric}_p50_ms"], line[f"free_form_{metric}_p50_ms"]
            line[f"{metric}_ratio"] = s / f if s is not None and f else None
        out.append(line)
    return pd.DataFrame(out)
