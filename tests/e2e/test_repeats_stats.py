"""Repeats against the simulator: the paired test counts cases, and so does the leaderboard.

The simulator's answers are deterministic per (seed, model, prompt): "parrot" answers
with words of the prompt (never a reference, which the prompt does not contain), and
"humble" always abstains, which is right exactly on the unanswerable cases.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from harness.cli import main
from harness.report.summary import paired_quality

CASES = 10
UNANSWERABLE = 3
REPEATS = 5


def write_cases(path: Path) -> Path:
    lines = []
    for i in range(CASES):
        answerable = i >= UNANSWERABLE
        lines.append(
            json.dumps(
                {
                    "id": f"case-{i}",
                    "question": f"Which colour is widget {i}?",
                    "contexts": [f"Widget {i} sits on shelf {i + 1} in the blue room."],
                    # References the prompt does not contain: parrot can never match them.
                    "references": [f"zqxv{i}"] if answerable else [],
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_repeats_are_one_unit_of_evidence(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    data = write_cases(tmp_path / "cases.jsonl")
    config = write_config(
        f"""
        run: {{name: repeats, concurrency: 8}}
        providers:
          - name: parrot
            simulate: {{ttft_ms: 20, itl_ms: 1, output_tokens: 6, seed: 1}}
          - name: humble
            simulate: {{ttft_ms: 100, itl_ms: 1, output_tokens: 6, abstain_rate: 1.0}}
        suites:
          - {{name: qa, kind: rag_qa, dataset: "{data}", repeats: {REPEATS}}}
        """
    )
    root = tmp_path / "results"
    runner = CliRunner()
    result = runner.invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(root)
    rows = rows[~rows["warmup"].fillna(False).astype(bool)]
    assert len(rows) == 2 * CASES * REPEATS
    assert (rows["status"] == "ok").all()
    # Deterministic per case: every repeat of a case scores the same.
    assert (rows.groupby(["provider", "case_id"])["exact_match_abstain"].nunique() == 1).all()
    per_case = rows.groupby(["provider", "case_id"])["exact_match_abstain"].first()
    assert per_case["parrot"].sum() == 0
    assert per_case["humble"].sum() == UNANSWERABLE

    pairs = paired_quality(rows)
    assert len(pairs) == 1
    pair = pairs.iloc[0]
    # 10 cases, not 50 (case, repeat) pairs; 3 discordant cases all one way:
    # exact two-sided binomial 2 * 0.5^3 = 0.25 (per row it would be 2 * 0.5^15).
    assert pair["n"] == CASES
    assert pair["p_mcnemar"] == 0.25
    assert pair["verdict"] == "no significant difference"

    summary = runner.invoke(main, ["summarize", str(root)])
    assert summary.exit_code == 0, summary.output
    assert "Paired comparison" in summary.output and "0.25" in summary.output

    # humble is 5× slower and "wins" quality only by a gap the paired test calls noise.
    board = runner.invoke(main, ["leaderboard", str(root), "--format", "json"])
    assert board.exit_code == 0, board.output
    ranked = {r["provider"]: r for r in json.loads(board.stdout)}
    assert ranked["parrot (simulated)"]["rank"] == "1"
    assert ranked["humble (simulated)"]["rank"] == "2"
    assert ranked["humble (simulated)"]["quality"] == UNANSWERABLE / CASES
    assert ranked["parrot (simulated)"]["score"] == 1.0
