"""Caps smaller than the number of worker processes: every request sent, the cap holds."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from harness.cli import main
from harness.sim import SimProcess

from ..conftest import sim_requests


def test_provider_cap_of_one_with_two_workers(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # levels [1, 2] x 6 requests with a provider cap of 1 and two worker processes: the
    # old split gave each worker a slot (two in flight) and, at level 1, dropped the
    # second worker's half of the requests.
    config = write_config(
        f"""
        run: {{name: caps, workers: 2, warmup_requests: 1}}
        providers:
          - name: p
            model: openai/steady
            api_base: {sim.api_base}
            concurrency: 1
        suites:
          - name: lat
            kind: latency
            prompts: ["a", "b", "c"]
            requests: 6
            max_tokens: 8
            load: {{pattern: concurrency, levels: [1, 2]}}
        """
    )
    root = tmp_path / "out"
    before = sim_requests(sim)
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(root)
    assert len(rows) == 12 and sorted(rows["request_index"]) == list(range(12))
    assert (rows["status"] == "ok").all()
    # 12 measured requests plus one warm-up: only one worker sends to a cap of 1.
    assert sim_requests(sim) - before == 12 + 1
    assert set(rows["worker"]) == {0}
    # Never two requests in flight: each send starts after the previous one ended.
    start = (rows["started_at"] - rows["started_at"].min()).dt.total_seconds()
    spans = sorted(zip(start, start + rows["e2e_s"], strict=True))
    overlaps = [b[0] - a[1] for a, b in itertools.pairwise(spans)]
    assert min(overlaps) > -0.002, overlaps
