"""The capacity search against simulators with known capacity (harness.run.capacity).

The ``box`` profile serves at most 4 requests at once (``max_concurrency``), each for
S = 100 ms (its one-token answer is written at TTFT), so it carries at most
4 / 0.1 = 40 req/s. Offered at constant rate L > 40 req/s, request k waits about
k · (S/4 - 1/L) for a slot (its TTFT grows by that): with 50 ms of TTFT slack in the SLO
(150 ms) request k misses once k · (25 ms - 1000/L ms) > 50 ms, so at 44 req/s (1.1×) the
requests after the 22nd miss (18 of 40: the level fails), at 40 req/s and below none.
At 42 req/s (1.05×) those after the 42nd would: the search's answer lies within 5 %
above the truth, or below it by what this machine's stalls cost. The ``limited`` profile refuses
(429) any request beyond 30 in a second: above 30 req/s a constant-rate level loses
1 - 30/L of its requests, more than the 5 % a 95 % goodput allows beyond 31.6 req/s.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.sim import SimProcess, SimProfile

TRUE_RATE = 4 / 0.100  # = 40 req/s
REQUESTS = 40  # measured requests per level


@pytest.fixture(scope="module")
def boxes() -> Iterator[SimProcess]:
    profiles = {
        "box": SimProfile(ttft_ms=100, itl_ms=0, output_tokens=1, max_concurrency=4),
        "limited": SimProfile(ttft_ms=5, itl_ms=1, output_tokens=4, max_rps=30),
    }
    with SimProcess(profiles) as process:
        yield process


def run(config: Path, root: Path) -> tuple[pd.DataFrame, dict[str, Any], str]:
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    (run_dir,) = [p for p in root.iterdir() if p.is_dir()]
    manifest = json.loads((run_dir / "_manifest.json").read_text())
    return pd.read_parquet(root), manifest, result.output


def sweep_requests(start: float, maximum: float, resolution: float, per_level: int) -> int:
    # A fixed sweep at the same resolution: levels start·(1+res)^k <= maximum.
    return (math.floor(math.log(maximum / start) / math.log(1 + resolution)) + 1) * per_level


def test_rate_search_finds_the_known_capacity_in_fewer_requests_than_a_sweep(
    boxes: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        run: {{name: cap, concurrency: 512}}
        providers:
          - name: box
            model: openai/box
            api_base: "{boxes.api_base}"
            max_retries: 0
            pricing: {{per_second: 0.002}}
        suites:
          - name: search
            kind: latency
            prompts: [one two three four]
            max_tokens: 1
            requests: {REQUESTS}
            load:
              pattern: capacity
              arrivals: rate
              slo: {{ttft_ms: 150}}
              start: 12
              max_rate: 200
              goodput: 0.9
              resolution: 0.05
        """
    )
    rows, manifest, output = run(config, tmp_path / "out")
    (found,) = manifest["capacity"]
    # Within 10 % of the truth.
    assert found["found"] == pytest.approx(TRUE_RATE, rel=0.10), found["levels"]
    assert found["converged"] and not found["at_maximum"]
    # Every level tried is stored under its own label; none other.
    tried = [lv["load_level"] for lv in found["levels"]]
    assert sorted(set(rows["load_level"])) == sorted(tried)
    assert len(rows) == found["requests_sent"]
    # Doubling from 12: 12 and 24 are well below the capacity: both pass.
    assert tried[:3] == ["capacity=12", "capacity=24", "capacity=48"]
    assert [lv["passed"] for lv in found["levels"][:3]] == [True, True, False]
    # 48 req/s is 1.2× the capacity: request k misses once k · (25 - 20.8 ms) > 50 ms,
    # from k = 12 on, so the level is decided (more than floor(0.1 × 40) = 4 misses: 90 %
    # goodput, a margin for this shared machine's stalls) and stops early.
    over = found["levels"][2]
    assert over["stopped_early"] and over["measured"] < REQUESTS
    # Fewer requests than a fixed sweep at 5 %: 12·1.05^k <= 200 for k = 0..57
    # (log(200/12)/log(1.05) = 2.813/0.04879 = 57.7), 58 levels × 40 requests = 2,320.
    assert found["sweep_requests"] == sweep_requests(12, 200, 0.05, REQUESTS) == 58 * 40
    assert found["requests_sent"] < found["sweep_requests"] / 4
    # The confidence of the answer: a Wilson interval around the goodput found.
    assert found["goodput_ci_low"] <= found["goodput_at_found"] <= found["goodput_ci_high"]
    assert found["goodput_at_found"] >= 0.9
    # The closing note, and the per-second cost of the box at the rate it carries:
    # 0.002 $/s × 1000 requests / found req/s.
    assert f"max {found['found']:.4g} req/s at SLO" in output
    out = CliRunner().invoke(
        main, ["export", str(tmp_path / "out"), "--to", str(tmp_path / "report.json")]
    )
    assert out.exit_code == 0, out.output
    report = json.loads((tmp_path / "report.json").read_text())
    (line,) = report["tables"]["capacity"]
    assert line["max_rps_at_slo"] == found["found"]
    assert line["usd_per_1k_at_slo"] == pytest.approx(0.002 * 1000 / found["found"])
    assert line["output_tokens_per_s_at_slo"] > 0
    assert any("max " in note and "req/s at SLO" in note for note in report["notes"])
    # The leaderboard carries the same figures beside its ranks.
    board = CliRunner().invoke(main, ["leaderboard", str(tmp_path / "out"), "--format", "json"])
    assert board.exit_code == 0, board.output
    (entry,) = json.loads(board.stdout)
    assert entry["max_rps_at_slo"] == found["found"]
    assert entry["usd_per_1k_at_slo"] == pytest.approx(0.002 * 1000 / found["found"])
    # The summary lists each level tried, open-loop figures included.
    summary = CliRunner().invoke(main, ["summarize", str(tmp_path / "out"), "--format", "json"])
    levels = {r["load_level"]: r for r in json.loads(summary.stdout)}
    assert set(levels) == set(tried)
    assert levels["capacity=12"]["offered_rps"] == pytest.approx(12, rel=1e-6)


def test_429s_are_the_rate_ceiling(
    boxes: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        run: {{name: ceiling, concurrency: 512}}
        providers:
          - {{name: limited, model: openai/limited, api_base: "{boxes.api_base}", max_retries: 0}}
        suites:
          - name: search
            kind: latency
            prompts: [one two three four]
            max_tokens: 4
            requests: {REQUESTS}
            load:
              pattern: capacity
              arrivals: rate
              slo: {{ttft_ms: 500}}
              start: 10
              max_rate: 100
        """
    )
    rows, manifest, output = run(config, tmp_path / "out")
    (found,) = manifest["capacity"]
    # Refusals above 30 req/s: the search settles within 10 % of it.
    assert found["found"] == pytest.approx(30, rel=0.10), found["levels"]
    assert found["rate_ceiling"] is not None and found["rate_ceiling"] <= 40
    assert found["rate_limited"] == int((rows["error_type"] == "rate_limited").sum()) > 0
    assert "rate ceiling: the provider answered 429" in output
    # A run whose only errors are the ceiling's 429s is not a failed run (exit 0 above).


def test_concurrency_search_closed_loop(
    boxes: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # Closed loop of n workers on 4 slots of S = 100 ms: at n <= 4 nobody waits (TTFT
    # 100 ms). At n = 5 four start together and one waits for a slot; every S the four
    # finish together and five contend again: one request in five waits a whole S (TTFT
    # 200 ms, over the 150 ms SLO), a 20 % miss where 10 % is allowed (90 %: a margin for
    # this shared machine's stalls at n = 4, which has no slack at all). The truth is 4.
    config = write_config(
        f"""
        run: {{name: conc, concurrency: 512}}
        providers:
          - {{name: box, model: openai/box, api_base: "{boxes.api_base}", max_retries: 0}}
        suites:
          - name: search
            kind: latency
            prompts: [one two three four]
            max_tokens: 1
            requests: 30
            load:
              pattern: capacity
              search: concurrency
              goodput: 0.9
              slo: {{ttft_ms: 150}}
              start: 1
              max_concurrency: 32
        """
    )
    rows, manifest, _ = run(config, tmp_path / "out")
    (found,) = manifest["capacity"]
    assert found["found"] == 4, found["levels"]
    assert found["lowest_failing"] == 5
    assert [lv["load_level"] for lv in found["levels"]][:3] == [
        "capacity-c=1",
        "capacity-c=2",
        "capacity-c=4",
    ]
    assert set(rows["load_level"]) == {lv["load_level"] for lv in found["levels"]}
