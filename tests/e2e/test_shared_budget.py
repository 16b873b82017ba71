"""budget_usd with worker processes: one ledger for all of them (harness/run/quotas.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.sim import SimProcess

from ..conftest import sim_requests

PRICED = "pricing: {input_per_mtok: 1000.0, output_per_mtok: 2000.0}"


def test_two_workers_share_one_budget_and_the_next_phase_does_not_hang(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # As in test_cost: worst case ≈ $0.075 a request, real cost $0.028. One $0.5 ledger
    # for both workers (two ledgers would let them spend up to $1). The cap is reached
    # in the first level; the second (another barrier) must not wait for a stopped worker.
    config = write_config(
        f"""
        run: {{name: shared, budget_usd: 0.5, concurrency: 4, workers: 2}}
        providers:
          - {{name: priced, model: openai/steady, api_base: "{sim.api_base}", {PRICED}}}
        suites:
          - {{name: s, kind: latency, prompts: ["one two three four"], requests: 40,
              max_tokens: 32, load: {{pattern: concurrency, levels: [2, 4]}}}}
        """
    )
    root = tmp_path / "out"
    before = sim_requests(sim)
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(root)
    warmups = 2  # one per worker
    assert 0 < len(rows) < 80
    assert sim_requests(sim) - before - warmups == len(rows)  # nothing sent without a row
    assert (rows["status"] == "ok").all()
    assert set(rows["worker"]) == {0, 1} and set(rows["executor"]) == {"processes"}
    manifest = json.loads(next(root.glob("*/_manifest.json")).read_text())
    assert manifest["stopped_reason"].startswith("budget:")
    spent = manifest["budget"]["spent_usd"]
    assert spent == pytest.approx(rows["cost_usd"].sum() + warmups * 0.028)
    assert spent <= 0.5
