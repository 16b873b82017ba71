"""SIGKILL at any moment loses no finished row: the journal has it, --resume reads it.

Each test runs ``harness run`` as a subprocess against the session's simulator (which
outlives the killed run, so its request counter says what was bought), kills it with
SIGKILL, and resumes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.sim import SimProcess
from harness.store.parts import read_runs

from ..conftest import sim_requests

PLANNED = 120
CONCURRENCY = 4
PRICED = "pricing: {input_per_mtok: 1000.0, output_per_mtok: 2000.0}"


def start_run(config: Path, root: Path, run_id: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "harness.cli", "run", str(config), "--out", str(root)]
    return subprocess.Popen(
        [*command, "--run-id", run_id, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def resume(config: Path, root: Path, run_id: str) -> None:
    result = CliRunner().invoke(
        main, ["run", str(config), "--out", str(root), "--resume", run_id, "--no-progress"]
    )
    assert result.exit_code == 0, result.output


def kill(proc: subprocess.Popen[str]) -> None:
    assert proc.poll() is None, proc.communicate()  # still running: killed mid-run
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def wait_until(done: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while not done():
        assert proc.poll() is None, proc.communicate()
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


def settled_requests(sim: SimProcess) -> int:
    """The simulator's request count once requests the killed client had sent are in."""
    count = sim_requests(sim)
    while True:
        time.sleep(0.2)
        if (now := sim_requests(sim)) == count:
            return count
        count = now


def journaled(root: Path, run_id: str) -> int:
    try:
        return len(read_runs(root, [run_id]))
    except Exception:  # the run directory is not there yet
        return 0


@pytest.fixture
def config(sim: SimProcess, write_config: Callable[..., Path]) -> Path:
    # "fast": TTFT 20 ms + 8 tokens × 2 ms ≈ 40 ms a request; 4 at a time ≈ 100
    # requests/s when the machine is idle, so 120 requests last over a second.
    return write_config(
        f"""
        run: {{name: kill, concurrency: {CONCURRENCY}, flush_s: 0.3}}
        providers:
          - {{name: fast, model: openai/fast, api_base: "{sim.api_base}"}}
        suites:
          - {{name: s, kind: latency, prompts: ["a b c"], requests: {PLANNED}, max_tokens: 16}}
        """
    )


@pytest.mark.parametrize("after_s", [0.05, 0.4, 0.9])
def test_sigkill_in_the_first_second_then_resume_buys_only_what_was_in_flight(
    sim: SimProcess, config: Path, tmp_path: Path, after_s: float
) -> None:
    root = tmp_path / "out"
    before = sim_requests(sim)
    proc = start_run(config, root, "k")
    # The warm-up is sent alone; the next request is the first measured one.
    wait_until(lambda: sim_requests(sim) >= before + 2, proc, "the first measured request")
    time.sleep(after_s)
    kill(proc)

    survived = read_runs(root, ["k"]).to_pandas()
    assert len(survived) < PLANNED
    assert survived["request_index"].is_unique
    assert set(survived["status"]) == {"ok"}
    assert json.loads((root / "k" / "_manifest.json").read_text())["status"] == "running"
    sent_before_kill = settled_requests(sim) - before

    resume(config, root, "k")
    total = sim_requests(sim) - before
    # The resumed run sends exactly the requests without a journaled row, plus its warm-up.
    assert total - sent_before_kill == PLANNED - len(survived) + 1
    # Nothing finished was bought twice: the server saw every planned request,
    # two warm-ups (one per attempt), and again only those in flight at the kill.
    in_flight_at_kill = total - PLANNED - 2
    assert 0 <= in_flight_at_kill <= CONCURRENCY

    rows = read_runs(root, ["k"]).to_pandas()
    assert sorted(rows["request_index"]) == list(range(PLANNED))
    assert set(rows["status"]) == {"ok"}
    compacted = pd.read_parquet(root)  # the resumed run ended: every row is in a part
    assert sorted(compacted["request_index"]) == list(range(PLANNED))
    assert not list((root / "k").glob("_journal-*"))


def test_sigkill_after_parts_were_compacted_then_resume(
    sim: SimProcess, config: Path, tmp_path: Path
) -> None:
    root = tmp_path / "out"
    before = sim_requests(sim)
    proc = start_run(config, root, "p")
    wait_until(lambda: any((root / "p").glob("part-*.parquet")), proc, "a compacted part")
    kill(proc)
    survived = read_runs(root, ["p"]).to_pandas()
    assert survived["request_index"].is_unique
    resume(config, root, "p")
    total = sim_requests(sim) - before
    assert 0 <= total - PLANNED - 2 <= CONCURRENCY
    rows = pd.read_parquet(root)
    assert sorted(rows["request_index"]) == list(range(PLANNED))


def test_a_run_killed_before_its_first_part_lists_and_summarizes(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        run: {{name: early, concurrency: 2, flush_s: 3600}}
        providers:
          - {{name: fast, model: openai/fast, api_base: "{sim.api_base}"}}
        suites:
          - {{name: s, kind: latency, prompts: ["a b c"], requests: 500, max_tokens: 16}}
        """
    )
    root = tmp_path / "out"
    proc = start_run(config, root, "e")
    wait_until(lambda: journaled(root, "e") >= 5, proc, "5 journaled rows")
    kill(proc)
    assert not list((root / "e").glob("part-*.parquet"))  # only the journal holds rows
    survived = len(read_runs(root, ["e"]))
    result = CliRunner().invoke(main, ["summarize", str(root), "--format", "json"])
    assert result.exit_code == 0, result.output
    [line] = json.loads(result.stdout)
    assert line["provider"] == "fast"
    assert line["requests"] == survived


def test_resumed_run_cannot_pass_the_budget_spent_before_the_kill(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        run: {{name: capped, budget_usd: 1.0, concurrency: 2, flush_s: 0.2}}
        providers:
          - {{name: priced, model: openai/steady, api_base: "{sim.api_base}", {PRICED}}}
        suites:
          - {{name: s, kind: latency, prompts: ["one two three four"], requests: 100, max_tokens: 32}}
        """
    )
    # A request really costs 4 input tokens × $1000/M + 12 output tokens × $2000/M
    # = $0.004 + $0.024 = $0.028. Its worst case, reserved before sending: the local
    # count of 4 tokens + 4 for the message = 8 input tokens × $1000/M + 32 output
    # tokens × $2000/M = $0.008 + $0.064 = $0.072.
    real, worst = 0.028, 0.072
    root = tmp_path / "out"
    before = sim_requests(sim)
    proc = start_run(config, root, "b")
    wait_until(lambda: journaled(root, "b") >= 10, proc, "10 journaled rows")
    kill(proc)
    survived = read_runs(root, ["b"]).to_pandas()
    assert survived["cost_usd"].tolist() == pytest.approx([real] * len(survived))

    resume(config, root, "b")
    manifest = json.loads((root / "b" / "_manifest.json").read_text())
    # Recovered: the journaled rows, plus the first attempt's warm-up at its worst case.
    assert manifest["budget"]["recovered_usd"] == pytest.approx(len(survived) * real + worst)
    assert manifest["stopped_reason"].startswith("budget:")
    rows = read_runs(root, ["b"]).to_pandas()
    assert rows["request_index"].is_unique
    assert len(rows) < 100
    # Everything bought that has a row, plus the two warm-ups ($0.028 each), stays
    # within the cap. Without the recovery the resumed run alone would have spent
    # up to $1.0 on top of the ≥ 10 × $0.028 spent before the kill.
    assert rows["cost_usd"].sum() + 2 * real <= 1.0
    assert manifest["budget"]["spent_usd"] <= 1.0
    # The server saw no more than the rows, the warm-ups and what was in flight.
    assert sim_requests(sim) - before <= len(rows) + 2 + 2


def test_rows_from_worker_processes_are_journaled_by_the_parent(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        run: {{name: workers, workers: 2, concurrency: 4, flush_s: 3600}}
        providers:
          - {{name: fast, model: openai/fast, api_base: "{sim.api_base}"}}
        suites:
          - {{name: s, kind: latency, prompts: ["a b c"], requests: 1000, max_tokens: 16}}
        """
    )
    root = tmp_path / "out"
    proc = start_run(config, root, "w")

    def both_workers() -> bool:
        if journaled(root, "w") < 20:
            return False
        return set(read_runs(root, ["w"]).column("worker").to_pylist()) == {0, 1}

    wait_until(both_workers, proc, "rows from both workers")
    kill(proc)
    rows = read_runs(root, ["w"]).to_pandas()
    assert set(rows["worker"]) == {0, 1}
    assert rows["request_index"].is_unique
    assert not list((root / "w").glob("part-*.parquet"))  # all of it from the journal
    # The workers die with their parent (SIGKILL runs no cleanup; the kernel
    # signals them): the simulator stops receiving requests.
    deadline = time.monotonic() + 10
    while True:
        settled = sim_requests(sim)
        time.sleep(0.5)
        if sim_requests(sim) == settled:
            break
        assert time.monotonic() < deadline, "worker processes outlived the killed run"
