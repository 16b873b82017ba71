"""``harness gate``: chosen checks, and a quality check that says how many cases it needs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.report.gate import cases_needed, parse_checks

from ..conftest import REPO

ACME = REPO / "suites" / "rag_qa" / "acme_kb.jsonl"


def test_cases_needed_by_hand() -> None:
    # 200 paired 0/1 cases: 20 only the candidate got right (p10 = 0.10), 10 only the
    # baseline (p01 = 0.05), 170 agree. d = 0.05; s² = p10 + p01 − d² = 0.15 − 0.0025 = 0.1475.
    # Margin 0.02, 95 % one-sided, 80 % power: z = 1.644854 + 0.841621 = 2.486475, z² = 6.182557;
    # n = 6.182557 × 0.1475 / (0.05 + 0.02)² = 0.911927 / 0.0049 = 186.11 → 187.
    diffs = [1.0] * 20 + [-1.0] * 10 + [0.0] * 170
    assert cases_needed(diffs, 0.02, 0.95) == 187
    # 90 % power: z = 1.644854 + 1.281552 = 2.926405, z² = 8.563848; × 0.1475 / 0.0049 = 257.8 → 258.
    assert cases_needed(diffs, 0.02, 0.95, power=0.9) == 258
    # Worse than the margin already (d = −0.05 < −0.02): no number of cases shows it.
    assert cases_needed([-1.0] * 10 + [0.0] * 190, 0.02, 0.95) is None
    # Every case agrees: the pseudo-pairs' variance 1/(n + 2) = 1/50; d = 0, gap 0.02:
    # 6.182557 × 0.02 / 0.0004 = 309.1 → 310.
    assert cases_needed([0.0] * 48, 0.02, 0.95) == 310


def test_parse_checks() -> None:
    assert parse_checks("latency, cost") == ["latency", "cost"]
    with pytest.raises(ValueError, match="unknown check speed"):
        parse_checks("latency,speed")


def _run(write_config: Callable[..., Path], tmp_path: Path, text: str) -> Path:
    config = write_config(text)
    root = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    return root


def test_a_latency_and_cost_only_run_is_gated_on_latency_and_cost(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    root = _run(
        write_config,
        tmp_path,
        """
        run: {name: lat, concurrency: 8}
        providers:
          - {name: a, simulate: {ttft_ms: 5, itl_ms: 1, output_tokens: 4},
             pricing: {input_per_mtok: 1, output_per_mtok: 1}}
          - {name: b, simulate: {ttft_ms: 5, itl_ms: 1, output_tokens: 4},
             pricing: {input_per_mtok: 1, output_per_mtok: 1}}
        suites:
          - {name: short, kind: latency, prompts: ["Say hi."], requests: 10, max_tokens: 8}
        """,
    )
    limits = ["--max-p95-latency-ms", "5000", "--max-usd-per-1k", "100"]
    base = ["gate", str(root), "--baseline", "a", "--candidate", "b", *limits]
    chosen = CliRunner().invoke(main, [*base, "--checks", "latency,cost"])
    assert chosen.exit_code == 0, chosen.output
    assert chosen.output.startswith("ADOPT")
    assert "no exact_match_abstain scores" not in chosen.output
    assert "not checked: quality (not chosen)" in chosen.output
    # Without --checks too: no quality scores means no quality check, not a failure.
    default = CliRunner().invoke(main, base)
    assert default.exit_code == 0, default.output
    assert "quality (no exact_match_abstain scores: no rag_qa suite)" in default.output
    # A chosen check needs its limit; an unknown one is named.
    no_limit = CliRunner().invoke(
        main, ["gate", str(root), "--baseline", "a", "--candidate", "b", "--checks", "latency"]
    )
    assert no_limit.exit_code == 2 and "needs a limit (max_p95_latency_ms)" in no_limit.output
    unknown = CliRunner().invoke(main, [*base, "--checks", "speed"])
    assert unknown.exit_code == 2 and "unknown check speed" in unknown.output
    # The older name still works.
    old = CliRunner().invoke(main, ["compare", *base[1:], "--checks", "cost"])
    assert old.exit_code == 0, old.output


def test_an_unreachable_margin_says_how_many_cases_it_needs(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    root = _run(
        write_config,
        tmp_path,
        f"""
        run: {{name: q, concurrency: 8}}
        providers:
          - {{name: base, simulate: {{ttft_ms: 1, itl_ms: 0, accuracy: 0.85, seed: 2}}}}
          - {{name: cand, simulate: {{ttft_ms: 1, itl_ms: 0, accuracy: 0.85, seed: 3}}}}
        suites:
          - {{name: acme, kind: rag_qa, dataset: {ACME}}}
        """,
    )
    result = CliRunner().invoke(
        main, ["gate", str(root), "--baseline", "base", "--candidate", "cand"]
    )
    assert result.exit_code == 1, result.output
    assert "FAIL  quality (non-inferiority)" in result.output
    rows = pd.read_parquet(root)
    wide = rows.pivot_table(index="case_id", columns="provider", values="exact_match_abstain")
    diffs = (wide["cand"] - wide["base"]).to_numpy()
    # By the simulator's rule (u = sha256(f"{seed}:{case}:0")[:8] / 2**64 < 0.85), seed 2
    # answers 42 of the 48 cases right and seed 3 43; 5 cases only cand gets right, 4 only
    # base: p10 = 5/48, p01 = 4/48, d = 1/48 = 0.020833, s² = 9/48 − (1/48)² = 0.187066.
    assert (int((diffs > 0).sum()), int((diffs < 0).sum())) == (5, 4)
    # n = ⌈6.182557 × 0.187066 / (0.020833 + 0.02)²⌉ = ⌈1.156548 / 0.0016674⌉ = ⌈693.6⌉ = 694.
    assert "48 cases cannot reach the margin" in result.output
    assert "about 694 paired cases would (80% power)" in result.output
