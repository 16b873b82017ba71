"""Load patterns end to end against the simulator: counts, rates, sweeps, warm-up, SLOs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.run.scheduler import arrivals
from harness.sim import SimProcess


def run(config: Path, root: Path) -> pd.DataFrame:
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    return pd.read_parquet(root)


def test_concurrency_sweep_with_warmup_and_slo(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        run: {{name: sweep}}
        providers:
          - {{name: steady, model: openai/steady, api_base: "{sim.api_base}"}}
        suites:
          - name: sweep
            kind: latency
            prompts: ["one two three", "four five six"]
            max_tokens: 12
            requests: 8
            load: {{pattern: concurrency, levels: [1, 4], warmup: 2}}
            slo: {{ttft_ms: 150, itl_ms: 20}}
        """
    )
    rows = run(config, tmp_path / "out")
    assert len(rows) == 2 * (2 + 8)
    assert rows.groupby("load_level").size().to_dict() == {"c=1": 10, "c=4": 10}
    assert rows.groupby("load_level")["warmup"].sum().to_dict() == {"c=1": 2, "c=4": 2}
    # At concurrency 1 requests never overlap; at 4 they do.
    one = rows[rows["load_level"] == "c=1"].sort_values("started_at")
    ends = one["started_at"] + pd.to_timedelta(one["e2e_s"], unit="s")
    assert (one["started_at"].iloc[1:].to_numpy() >= ends.iloc[:-1].to_numpy()).all()
    four = rows[rows["load_level"] == "c=4"].sort_values("started_at")
    assert (four["started_at"].diff().dt.total_seconds().iloc[1:4] < 0.05).all()

    out = CliRunner().invoke(main, ["summarize", str(tmp_path / "out"), "--format", "json"])
    summary = {r["load_level"]: r for r in json.loads(out.stdout)}
    assert set(summary) == {"c=1", "c=4"}
    for line in summary.values():
        assert line["requests"] == 8  # warm-up excluded
        assert line["ttft_p50_ms_ci_low"] <= line["ttft_p50_ms"] <= line["ttft_p50_ms_ci_high"]
        assert 80 <= line["ttft_p50_ms"] <= 140
        assert line["itl_p50_ms"] == pytest.approx(10, abs=3)
        assert line["goodput"] == pytest.approx(1.0)  # the profile meets the SLO
        assert line["throughput_rps"] > 0
    # Closed loop: four workers give more than twice the throughput of one (not
    # four times: warm-up requests share the first round with measured ones).
    assert summary["c=4"]["throughput_rps"] > 1.8 * summary["c=1"]["throughput_rps"]


@pytest.mark.parametrize("pattern", ["rate", "poisson"])
def test_open_loop_arrivals_follow_the_rate(
    pattern: str, sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    rate = 40.0
    config = write_config(
        f"""
        run: {{name: {pattern}, concurrency: 64}}
        providers:
          - {{name: fast, model: openai/fast, api_base: "{sim.api_base}"}}
        suites:
          - name: arrivals
            kind: latency
            prompts: ["a b c d"]
            max_tokens: 8
            requests: 120
            load: {{pattern: {pattern}, levels: [{rate}], seed: 3}}
        """
    )
    rows = run(config, tmp_path / "out")
    assert len(rows) == 120
    assert (rows["status"] == "ok").all()
    starts = np.sort((rows["started_at"] - rows["started_at"].min()).dt.total_seconds())
    gaps = np.diff(starts)
    # Mean inter-arrival 1/rate = 25 ms; 119 gaps of an exponential have a
    # relative standard error of ~9 %, so ±25 % is > 2.5 sigma.
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.25)
    if pattern == "rate":
        assert np.median(gaps) == pytest.approx(1 / rate, abs=0.005)
    else:
        # Exponential gaps: coefficient of variation ~1, unlike a constant rate.
        assert gaps.std() / gaps.mean() > 0.6
    assert rows["schedule_lag_s"].median() < 0.01


def test_duration_bounded_phase(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        run: {{name: timed}}
        providers:
          - {{name: fast, model: openai/fast, api_base: "{sim.api_base}"}}
        suites:
          - name: timed
            kind: latency
            prompts: ["a b"]
            max_tokens: 8
            requests: 1
            load: {{pattern: rate, levels: [20], duration_s: 1.0}}
        """
    )
    rows = run(config, tmp_path / "out")
    assert 17 <= len(rows) <= 21  # 20 req/s for 1 s
    assert rows["request_index"].is_unique


def test_arrival_generators_are_seeded() -> None:
    first = [t for t, _ in zip(arrivals("poisson", 10, 1), range(5), strict=False)]
    again = [t for t, _ in zip(arrivals("poisson", 10, 1), range(5), strict=False)]
    assert first == again
    assert [t for t, _ in zip(arrivals("rate", 4, 0), range(3), strict=False)] == [0, 0.25, 0.5]


def test_synthetic_prompts_have_the_requested_token_length() -> None:
    from harness.cost.tokens import count_tokens, synthetic_prompt

    for n in (1, 17, 256):
        assert count_tokens(synthetic_prompt(n, seed=5)) == n
    assert synthetic_prompt(64, seed=1) == synthetic_prompt(64, seed=1)
    assert synthetic_prompt(64, seed=1) != synthetic_prompt(64, seed=2)


def test_worker_processes_share_the_plan(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        run: {{name: multi, workers: 2, concurrency: 16}}
        providers:
          - {{name: steady, model: openai/steady, api_base: "{sim.api_base}", concurrency: 16}}
        suites:
          - name: sweep
            kind: latency
            prompts: ["a b c", "d e f"]
            max_tokens: 12
            requests: 16
            load: {{pattern: concurrency, levels: [2, 8]}}
          - name: arrivals
            kind: latency
            prompts: ["g h"]
            max_tokens: 8
            requests: 80
            load: {{pattern: poisson, levels: [40], seed: 1}}
        """
    )
    rows = run(config, tmp_path / "out")
    assert len(rows) == 2 * 16 + 80
    assert sorted(rows["request_index"]) == list(range(len(rows)))
    assert set(rows["worker"]) == {0, 1}
    assert (rows["status"] == "ok").all()
    # The phases did not overlap: every c=8 request started after the last c=2 one ended.
    sweep = rows[rows["suite"] == "sweep"]
    low = sweep[sweep["load_level"] == "c=2"]
    high = sweep[sweep["load_level"] == "c=8"]
    low_end = (low["started_at"] + pd.to_timedelta(low["e2e_s"], unit="s")).max()
    assert high["started_at"].min() >= low_end - pd.Timedelta(milliseconds=5)
    # Two Poisson streams of 20/s make one of 40/s.
    arrivals = rows[rows["suite"] == "arrivals"]
    starts = np.sort((arrivals["started_at"] - arrivals["started_at"].min()).dt.total_seconds())
    assert np.diff(starts).mean() == pytest.approx(1 / 40, rel=0.3)
    # The steady profile's TTFT (80 ms) is measured the same way by every worker.
    by_worker = sweep.groupby("worker")["ttft_s"].median()
    assert (by_worker.between(0.080, 0.130)).all()


def test_saturation_warning_fires_when_overloaded_and_not_otherwise(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # Quiet: one stream at a time through the direct client, 20 ms between tokens.
    quiet = write_config(
        """
        run: {name: quiet}
        providers:
          - {name: calm, simulate: {ttft_ms: 30, itl_ms: 20, output_tokens: 10}, concurrency: 1}
        suites:
          - {name: s, kind: latency, prompts: ["a b"], requests: 10, max_tokens: 16}
        """,
        name="quiet.yaml",
    )
    result = CliRunner().invoke(
        main, ["run", str(quiet), "--out", str(tmp_path / "q"), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(tmp_path / "q")
    # Never require every row to be clock_ok: a shared machine may deschedule the
    # process under a quiet run too (inside the full suite, 4+ of these 10 rows were
    # flagged now and then). The quiet run stays under half flagged, the overloaded one
    # below goes over half. A warning, if any, quotes the rows' own worst lag.
    quiet_flagged = int((~rows["clock_ok"]).sum())
    assert quiet_flagged < len(rows) / 2, rows[["loop_lag_ms", "client_cpu"]].describe()
    if quiet_flagged:
        assert f"{rows['loop_lag_ms'].max():.1f} ms" in result.stderr
    else:
        assert "saturated" not in result.stderr

    # Overloaded: 64 streams of 1-ms tokens through litellm (~0.4 ms of CPU per chunk).
    loud = write_config(
        """
        run: {name: loud, concurrency: 64}
        providers:
          - name: flood
            simulate: {ttft_ms: 1, itl_ms: 1, output_tokens: 100}
            transport: litellm
            concurrency: 64
        suites:
          - {name: s, kind: latency, prompts: ["a b"], requests: 64, max_tokens: 128}
        """,
        name="loud.yaml",
    )
    result = CliRunner().invoke(
        main, ["run", str(loud), "--out", str(tmp_path / "l"), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "saturated" in result.stderr
    rows = pd.read_parquet(tmp_path / "l")
    assert (~rows["clock_ok"]).sum() > len(rows) / 2
    manifest = json.loads(next((tmp_path / "l").glob("*/_manifest.json")).read_text())
    assert manifest["clock_health"]["untrustworthy_rows"] > 0
    assert "saturated" in manifest["clock_health"]["warning"]
