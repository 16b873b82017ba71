"""A trace replayed against the simulator: the rows keep the trace's arrivals and lengths."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.sim import SimProcess

TRACE = Path(__file__).resolve().parents[1] / "data" / "traces" / "sample.jsonl"


def test_trace_replay_reproduces_arrivals_and_lengths(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # The steady profile answers 12 words unless max_tokens is lower; the trace's outputs
    # are 2..10 tokens, so each row's output is exactly its traced length.
    config = write_config(
        f"""
        run: {{name: replay, concurrency: 64}}
        providers:
          - {{name: steady, model: openai/steady, api_base: "{sim.api_base}"}}
        suites:
          - name: replay
            kind: latency
            load: {{pattern: trace, trace: "{TRACE}", speed: 2.0}}
        """
    )
    root = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(root).sort_values("request_index")
    traced = [json.loads(line) for line in TRACE.read_text().splitlines()]
    assert len(rows) == 40 and (rows["status"] == "ok").all()
    assert set(rows["load_level"]) == {"trace=2x"}
    # Scheduled at the traced arrival / speed (trace order = file order: it is sorted).
    assert rows["scheduled_s"].to_numpy() == pytest.approx(
        [t["arrival_s"] / 2 for t in traced], abs=1e-9
    )
    assert rows["output_tokens"].tolist() == [t["output_tokens"] for t in traced]
    assert rows["max_tokens"].tolist() == [t["output_tokens"] for t in traced]
    # Never sent before its time; on a shared 2-core machine, generously within 250 ms.
    late = rows["sent_s"] - rows["scheduled_s"]
    assert (late >= 0).all() and late.max() < 0.25
    out = CliRunner().invoke(main, ["summarize", str(root), "--format", "json"])
    (line,) = json.loads(out.stdout)
    assert line["send_mae_ms"] == pytest.approx(late.abs().mean() * 1000)
    assert line["send_mae_ms"] < 50
    # The closing note of the run says how faithful the replay was.
    assert "send time vs schedule: mean absolute error" in result.output
