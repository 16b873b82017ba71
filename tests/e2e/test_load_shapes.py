"""Bursts and ramps end to end against the simulator: rows keep their planned arrivals."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.sim import SimProcess


def run(config: Path, root: Path) -> pd.DataFrame:
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    return pd.read_parquet(root)


def test_ramp_and_gamma_phases_send_on_their_schedules(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        run: {{name: shapes, warmup_requests: 1}}
        providers:
          - {{name: fast, model: openai/fast, api_base: "{sim.api_base}"}}
        suites:
          - name: ramp
            kind: latency
            prompts: [one two three]
            max_tokens: 4
            requests: 5
            load: {{pattern: rate, ramp: {{from: 10, to: 30}}, duration_s: 1}}
          - name: bursty
            kind: latency
            prompts: [one two three]
            max_tokens: 4
            requests: 30
            load: {{pattern: gamma, levels: [40], burstiness: 0.25, seed: 5}}
        """
    )
    rows = run(config, tmp_path / "out")
    ramp = rows[rows["suite"] == "ramp"].sort_values("scheduled_s")
    # Λ(t) = 10t + (30 - 10)t²/(2·1) = 10t + 10t²; Λ(1) = 20: arrivals i = 0..19 fall
    # before the 1 s end (a time-bounded phase cycles its 5 prompts).
    assert len(ramp) == 20
    assert set(ramp["load_level"]) == {"rate=10..30"}
    # Arrival i at 10t² + 10t = i: t = (-10 + sqrt(100 + 40i)) / 20.
    expected = [(-10 + math.sqrt(100 + 40 * i)) / 20 for i in range(20)]
    assert ramp["scheduled_s"].to_numpy() == pytest.approx(expected, abs=1e-6)
    # Sent on schedule: never early, and (generously, on a shared machine) within 0.25 s.
    lateness = ramp["sent_s"] - ramp["scheduled_s"]
    assert (lateness >= 0).all() and lateness.max() < 0.25
    bursty = rows[rows["suite"] == "bursty"].sort_values("scheduled_s")
    assert set(bursty["load_level"]) == {"gamma=40,burst=0.25"}
    assert len(bursty) == 30 and (bursty["status"] == "ok").all()
    gaps = bursty["scheduled_s"].diff().dropna()
    # Shape 0.25: CV 2 in expectation; 29 gaps only say it is clearly above a Poisson's 1.
    assert gaps.std() / gaps.mean() > 1.2


def test_output_length_distribution_reaches_the_server(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # The steady profile answers 12 words unless max_tokens is lower: drawn lengths of
    # 2..6 come back as exactly that many output tokens (the server's usage).
    config = write_config(
        f"""
        run: {{name: lengths}}
        providers:
          - {{name: steady, model: openai/steady, api_base: "{sim.api_base}"}}
        suites:
          - name: drawn
            kind: latency
            requests: 12
            synthetic:
              input_tokens: {{dist: uniform, min: 20, max: 40}}
              output_tokens: {{dist: uniform, min: 2, max: 6}}
              count: 4
            load: {{pattern: concurrency, levels: [4]}}
        """
    )
    rows = run(config, tmp_path / "out")
    assert len(rows) == 12 and (rows["status"] == "ok").all()
    assert (rows["output_tokens"] == rows["max_tokens"]).all()
    assert rows["max_tokens"].between(2, 6).all() and rows["max_tokens"].nunique() > 1
