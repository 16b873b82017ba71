"""Leaderboard, nightly diff, adoption gate and history, as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from harness.cli import main

from ..conftest import TEST_DATA

SAMPLE = TEST_DATA / "squad-v2" / "sample-200.jsonl"


def config_for(write_config: Callable[..., Path], slow_ttft: int, name: str) -> Path:
    return write_config(
        f"""
        run: {{name: nightly, warmup_requests: 1}}
        providers:
          - name: incumbent
            simulate: {{ttft_ms: 250, itl_ms: 1, output_tokens: 6, abstain_rate: 0.5, seed: 1}}
            pricing: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}
            tags: {{region: eu}}
          - name: challenger
            simulate: {{ttft_ms: {slow_ttft}, itl_ms: 1, output_tokens: 6, abstain_rate: 0.5, seed: 2}}
            pricing: {{input_per_mtok: 0.5, output_per_mtok: 1.0}}
            tags: {{region: us}}
        suites:
          - {{name: qa, kind: rag_qa, dataset: "{SAMPLE}", limit: 40}}
        """,
        name=name,
    )


def run(config: Path, root: Path, run_id: str) -> None:
    result = CliRunner().invoke(
        main, ["run", str(config), "--out", str(root), "--run-id", run_id, "--no-progress"]
    )
    assert result.exit_code == 0, result.output


# TTFTs of 250 ms, not 20: two same-profile nights must not differ by the 10 % and
# 5 ms threshold, and on a loaded 2-core machine a 20 ms profile measured 35-46 ms.
def test_nightly_diff_leaderboard_gate_history(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    root = tmp_path / "results"
    run(config_for(write_config, 250, "a.yaml"), root, "night-1")
    run(config_for(write_config, 250, "b.yaml"), root, "night-2")
    run(config_for(write_config, 1000, "c.yaml"), root, "night-3")
    runner = CliRunner()

    # The same profile: no regression. A p95 of 40 requests moves by 10 % between two
    # runs on a shared 2-core machine (seen: 256 -> 286 ms), so the tail gets 25 % here;
    # the medians keep the default threshold.
    tail = "--threshold=ttft_p95_ms=0.25"
    same = runner.invoke(main, ["diff", str(root), "night-1", "night-2", tail])
    assert same.exit_code == 0, same.output
    worse = runner.invoke(main, ["diff", str(root), "--against", "previous", "--format", "json"])
    assert worse.exit_code == 1, worse.output
    changes = json.loads(worse.stdout)
    flagged = {(c["provider"], c["metric"]) for c in changes if c["regression"]}
    assert ("challenger (simulated)", "ttft_p50_ms") in flagged
    assert not any(p.startswith("incumbent") for p, _ in flagged)

    board = runner.invoke(main, ["leaderboard", str(root), "--format", "json"])
    assert board.exit_code == 0, board.output
    ranked = json.loads(board.stdout)
    assert {r["provider"] for r in ranked} == {"incumbent (simulated)", "challenger (simulated)"}
    assert all("region" in r for r in ranked)
    eu = json.loads(
        runner.invoke(
            main, ["leaderboard", str(root), "--where", "region=eu", "--format", "json"]
        ).stdout
    )
    assert [r["provider"] for r in eu] == ["incumbent (simulated)"]
    bad = runner.invoke(main, ["leaderboard", str(root), "--weights", "speed=1"])
    assert bad.exit_code == 2

    gate = runner.invoke(
        main,
        [
            "compare",
            str(root),
            "--baseline",
            "incumbent",
            "--candidate",
            "challenger",
            "--max-p95-latency-ms",
            "800",
        ],
    )
    assert gate.exit_code == 1  # 1000 ms TTFT alone breaks the 800 ms E2E p95 limit
    assert "DO NOT ADOPT" in gate.stdout
    assert "latency" in gate.stdout

    series = json.loads(
        runner.invoke(
            main,
            [
                "history",
                str(root),
                "--metric",
                "ttft_p50_ms",
                "--provider",
                "challenger",
                "--format",
                "json",
            ],
        ).stdout
    )
    assert [s["run_id"] for s in series] == ["night-1", "night-2", "night-3"]
    # Times in JSON are ISO 8601 text, not pandas' default epoch milliseconds.
    started = [datetime.fromisoformat(s["started_at"]) for s in series]
    assert started == sorted(started) and started[0].utcoffset() is not None
    assert series[2]["value"] > 990 > series[0]["value"]
