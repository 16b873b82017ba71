"""Runs of a generated (lazy) plan against the simulator: every planned request becomes
exactly the row the listed plan would have made (same ``request_index``, suite, case,
repeat, level), in one process and in worker processes (which receive the pickled
phases and regenerate their share), and ``--resume`` re-sends exactly the missing ones,
conversations' later turns included."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

from harness.config.spec import RunSpec, load_config
from harness.run import plan as plan_module
from harness.run.lazy import is_lazy, phase_pairs
from harness.run.plan import build_plan
from harness.run.session import execute
from harness.sim import SimProcess
from harness.store.files import part_path, run_files, write_part
from harness.store.parts import read_runs

from ..conftest import sim_requests

REPO = Path(__file__).resolve().parents[2]
IDENTITY = ["request_index", "suite", "provider", "load_level", "case_id", "repeat", "warmup"]


def spec_for(sim: SimProcess, write_config: Callable[..., Path], workers: int) -> RunSpec:
    return load_config(
        write_config(
            f"""
            run: {{name: lazy, concurrency: 8, workers: {workers}, warmup_requests: 1,
                  flush_s: 0.2}}
            providers:
              - {{name: f1, model: openai/fast, api_base: "{sim.api_base}"}}
              - {{name: f2, model: openai/fast, api_base: "{sim.api_base}"}}
            suites:
              - name: swept
                kind: latency
                prompts: ["a b c", "d e f"]
                requests: 6
                load: {{pattern: concurrency, levels: [2, 4], warmup: 1}}
              - {{name: rag, kind: rag_qa, dataset: {REPO}/suites/rag_qa/acme_kb.jsonl,
                 max_tokens: 16}}
              - {REPO}/suites/chat/support.yaml
            """
        )
    )


def planned(spec: RunSpec) -> list[tuple[Any, ...]]:
    """The listed plan's identity of each request, by index."""
    rows = [
        (i, r.suite, r.provider, r.load_level, r.case_id, r.repeat, r.warmup)
        for phase in build_plan(spec, lazy_min=10**9)
        for i, r in phase_pairs(phase)
    ]
    return sorted(rows, key=lambda row: row[0])


def stored(root: Path, run_id: str) -> list[tuple[Any, ...]]:
    table = read_runs(root, [run_id]).select(IDENTITY).to_pylist()
    return sorted((tuple(row[c] for c in IDENTITY) for row in table), key=lambda row: row[0])


@pytest.fixture
def lazy_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every phase generated as it is sent, however small (the run's own plan)."""
    monkeypatch.setattr(plan_module, "LAZY_MIN_REQUESTS", 1)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_lazy_run_stores_the_listed_plans_rows(
    sim: SimProcess,
    write_config: Callable[..., Path],
    tmp_path: Path,
    lazy_everywhere: None,
    workers: int,
) -> None:
    spec = spec_for(sim, write_config, workers)
    assert all(is_lazy(p) for p in build_plan(spec))  # what execute plans, too
    expected = planned(spec)
    # 2 providers × (2 levels × 7 + 48 rag cases + the chat suite's turns)
    assert len(expected) > 2 * (14 + 48)
    result = execute(spec, out=tmp_path, run_id="lazy", show_progress=False)
    assert result.status == "completed"
    assert stored(tmp_path, "lazy") == expected  # each index once, as planned


def test_resuming_a_lazy_run_sends_exactly_the_missing_requests(
    sim: SimProcess,
    write_config: Callable[..., Path],
    tmp_path: Path,
    lazy_everywhere: None,
) -> None:
    spec = spec_for(sim, write_config, 1)
    expected = planned(spec)
    execute(spec, out=tmp_path, run_id="r", show_progress=False)
    # Lose every fourth row (index divisible by 4; chat turns among them, whose predecessors stay finished).
    run_dir = tmp_path / "r"
    table = read_runs(tmp_path, ["r"])
    kept = table.filter(pc.not_equal(pc.bit_wise_and(table["request_index"], 3), 0))
    lost = table.num_rows - kept.num_rows
    assert lost > 0
    for part in run_files(run_dir).parts:
        part.unlink()
    write_part(part_path(run_dir, 0), kept)
    before = sim_requests(sim)
    result = execute(spec, out=tmp_path, resume="r", show_progress=False)
    assert result.status == "completed"
    sent = sim_requests(sim) - before - 2  # minus one warm-up per provider
    assert sent == lost
    assert stored(tmp_path, "r") == expected
