"""Each suite kind's own quality score in the reports (harness.report.quality)."""

from __future__ import annotations

import math

import pandas as pd

from harness.report.quality import (
    QUALITY_BY_KIND,
    primary_metric,
    primary_scores,
    quality_columns,
)
from harness.report.summary import compact, paired_quality


def test_primary_metric_per_kind_and_fallback() -> None:
    assert primary_metric("rag_qa") == "exact_match_abstain"
    assert primary_metric("tool_call") == "tool_exact"
    assert primary_metric("structured") == "field_accuracy"
    assert primary_metric("latency") == "exact_match_abstain"  # no scores of its own
    assert primary_metric(None) == "exact_match_abstain"  # rows from before suite_kind
    # rag_qa's columns in the summary's historical order.
    assert quality_columns("rag_qa") == (
        "exact_match",
        "f1",
        "exact_match_abstain",
        "f1_abstain",
        "contains",
        "regex_match",
        "judge_correctness",
    )
    for quality in QUALITY_BY_KIND.values():
        assert quality.primary in quality.columns


def test_primary_scores_pick_each_rows_kind() -> None:
    rows = pd.DataFrame(
        {
            "suite_kind": ["rag_qa", "tool_call", "structured", "latency", None],
            "exact_match_abstain": [1.0, 0.0, 0.0, math.nan, 1.0],
            "tool_exact": [math.nan, 1.0, 0.0, math.nan, math.nan],
            "field_accuracy": [math.nan, math.nan, 0.25, math.nan, math.nan],
        }
    )
    # rag 1; tool 1 (its exact_match_abstain 0 ignored); structured 0.25; latency none;
    # a row without a kind falls back to exact_match_abstain: 1.
    got = primary_scores(rows).tolist()
    assert got[:3] == [1.0, 1.0, 0.25] and math.isnan(got[3]) and got[4] == 1.0


def summary_line(suite: str, provider: str, metric: str, mean: float) -> dict[str, object]:
    return {
        "suite": suite,
        "load_level": "-",
        "provider": provider,
        "requests": 4,
        "error_rate": 0.0,
        metric: mean,
        f"{metric}_ci_low": mean - 0.1,
        f"{metric}_ci_high": mean + 0.1,
    }


def test_compact_quality_column_names_the_kinds_score() -> None:
    rag = pd.DataFrame([summary_line("qa", "a", "exact_match_abstain", 0.5)])
    assert "EM (abstain) [95% CI]" in compact(rag).columns
    assert compact(rag)["EM (abstain) [95% CI]"].tolist() == ["0.500 [0.400, 0.600]"]
    mixed = pd.DataFrame(
        [
            summary_line("qa", "a", "exact_match_abstain", 0.5),
            summary_line("tools", "a", "tool_exact", 0.25),
        ]
    )
    cells = compact(mixed)["quality [95% CI]"].tolist()
    assert cells == ["EM (abstain) 0.500 [0.400, 0.600]", "tool exact 0.250 [0.150, 0.350]"]


def test_paired_quality_uses_each_suites_primary() -> None:
    rows = []
    for case, (a, b) in enumerate([(1, 0), (1, 0), (1, 1), (0, 0)]):
        for provider, exact in (("a", a), ("b", b)):
            rows.append(
                {
                    "suite": "tools",
                    "suite_kind": "tool_call",
                    "case_id": f"c{case}",
                    "provider": provider,
                    "status": "ok",
                    "warmup": False,
                    "tool_exact": float(exact),
                    "exact_match_abstain": math.nan,
                }
            )
    pairs = paired_quality(pd.DataFrame(rows))
    # a: 3/4 right, b: 1/4; 2 discordant cases, both for a: p = 2 × 0.5² = 0.5.
    assert pairs["metric"].tolist() == ["tool_exact"]
    assert (pairs["mean_a"].iloc[0], pairs["mean_b"].iloc[0]) == (0.75, 0.25)
    assert pairs["p_mcnemar"].iloc[0] == 0.5
    assert pairs["verdict"].iloc[0] == "no significant difference"
