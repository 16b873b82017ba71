"""Crash safety: SIGKILL mid-run keeps every flushed row; --resume sends only what is missing."""

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
from harness.errors import StoreError
from harness.sim import SimProcess
from harness.store.parts import read_runs

from ..conftest import sim_requests

PLANNED = 150


def start_run(config: Path, root: Path, run_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            str(config),
            "--out",
            str(root),
            "--run-id",
            run_id,
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_rows(run_dir: Path, at_least: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        journaled = [*run_dir.glob("part-*.parquet"), *run_dir.glob("_journal-*.jsonl")]
        if journaled and len(read_runs(run_dir.parent, [run_dir.name])) >= at_least:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    pytest.fail("no rows were flushed in time")


@pytest.fixture
def slow_config(sim: SimProcess, write_config: Callable[..., Path]) -> Path:
    return write_config(
        f"""
        run: {{name: crash, flush_s: 0.1, concurrency: 4}}
        providers:
          - {{name: steady, model: openai/steady, api_base: "{sim.api_base}", concurrency: 4}}
        suites:
          - {{name: s, kind: latency, prompts: ["a b c", "d e f"], requests: {PLANNED}, max_tokens: 16}}
        """
    )


def test_sigkill_then_resume_sends_each_missing_request_once(
    sim: SimProcess, slow_config: Path, tmp_path: Path
) -> None:
    root = tmp_path / "out"
    proc = start_run(slow_config, root, "crash")
    wait_for_rows(root / "crash", 20, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    # Every row journaled before the kill is readable by our reader; pandas sees
    # the parts compacted so far (a subset, never a row twice).
    survived = read_runs(root).to_pandas()
    assert 20 <= len(survived) < PLANNED
    compacted = pd.read_parquet(root)
    assert compacted["request_index"].is_unique
    assert set(compacted["request_index"]) <= set(survived["request_index"])
    assert survived["request_index"].is_unique
    assert set(survived["status"]) == {"ok"}
    manifest = json.loads((root / "crash" / "_manifest.json").read_text())
    assert manifest["status"] == "running"  # it never got to say otherwise

    before = sim_requests(sim)
    result = CliRunner().invoke(
        main, ["run", str(slow_config), "--out", str(root), "--resume", "crash", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    sent = sim_requests(sim) - before - 1  # minus the warm-up
    assert sent == PLANNED - len(survived)  # no case paid twice

    merged = pd.read_parquet(root)
    assert len(merged) == PLANNED
    assert sorted(merged["request_index"]) == list(range(PLANNED))
    assert set(merged["status"]) == {"ok"}
    manifest = json.loads((root / "crash" / "_manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["resumes"][0]["to_send"] == PLANNED - len(survived)


def test_ctrl_c_rows_are_replaced_on_resume(slow_config: Path, tmp_path: Path) -> None:
    root = tmp_path / "out"
    proc = start_run(slow_config, root, "intr")
    wait_for_rows(root / "intr", 10, proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    rows = pd.read_parquet(root)
    assert "cancelled" in set(rows["status"])  # in-flight requests were recorded as such
    result = CliRunner().invoke(
        main, ["run", str(slow_config), "--out", str(root), "--resume", "intr", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    merged = pd.read_parquet(root)
    assert len(merged) == PLANNED
    assert merged["request_index"].is_unique
    assert "cancelled" not in set(merged["status"])


def test_corrupt_part_is_reported_not_dropped(slow_config: Path, tmp_path: Path) -> None:
    root = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["run", str(slow_config), "--out", str(root), "--run-id", "c", "--no-progress"]
    )
    assert result.exit_code == 0
    part = sorted((root / "c").glob("part-*.parquet"))[0]
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])  # a torn write
    with pytest.raises(StoreError, match=part.name):
        read_runs(root)
    summary = CliRunner().invoke(main, ["summarize", str(root)])
    assert summary.exit_code == 2
    assert part.name in summary.stderr
    resumed = CliRunner().invoke(
        main, ["run", str(slow_config), "--out", str(root), "--resume", "c", "--no-progress"]
    )
    assert resumed.exit_code == 0, resumed.output
    assert (root / "c" / f"_corrupt-{part.name}").exists()
    assert len(pd.read_parquet(root)) == PLANNED


def test_resume_refuses_a_changed_config(
    slow_config: Path, tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    root = tmp_path / "out"
    CliRunner().invoke(
        main, ["run", str(slow_config), "--out", str(root), "--run-id", "x", "--no-progress"]
    )
    slow_config.write_text(slow_config.read_text().replace("max_tokens: 16", "max_tokens: 17"))
    result = CliRunner().invoke(
        main, ["run", str(slow_config), "--out", str(root), "--resume", "x"]
    )
    assert result.exit_code == 2
    assert "changed since run x" in result.stderr


def test_sigkill_leaves_no_simulator_behind(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    marker = f"orphan-check-{tmp_path.name}"
    config = write_config(
        f"""
        run: {{name: orphan, flush_s: 0.1}}
        providers:
          - {{name: {marker}, simulate: {{ttft_ms: 50, itl_ms: 20, output_tokens: 20}}}}
        suites:
          - {{name: s, kind: latency, prompts: ["a"], requests: 200, max_tokens: 32}}
        """
    )
    root = tmp_path / "out"
    proc = start_run(config, root, "orphan")
    wait_for_rows(root / "orphan", 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    def simulators() -> list[str]:
        found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
        return found.stdout.split()

    deadline = time.monotonic() + 10
    while simulators() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert simulators() == []
