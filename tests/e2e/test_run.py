"""End to end: a config, the real CLI, litellm, a simulator on loopback, Parquet, the summary."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.sim import SimProcess

REQUIRED_COLUMNS = {
    "run_id",
    "suite",
    "suite_kind",
    "case_id",
    "provider",
    "model",
    "repeat",
    "status",
    "error_type",
    "error_message",
    "started_at",
    "ttft_s",
    "e2e_s",
    "output_tokens",
    "input_tokens",
    "cost_usd",
    "response_text",
}


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def two_provider_config(sim: SimProcess, write_config: Callable[..., Path]) -> Path:
    write_config(
        """
        name: short
        kind: latency
        prompts: ["What is the capital of France?", "Name a colour."]
        max_tokens: 32
        requests: 6
        """,
        name="suites/short.yaml",
    )
    return write_config(
        f"""
        run: {{name: e2e, concurrency: 4}}
        providers:
          - name: steady
            model: openai/steady
            api_base: {sim.api_base}
            params: {{temperature: 0}}
            concurrency: 2
          - name: embedded
            simulate: {{ttft_ms: 30, itl_ms: 3, output_tokens: 5}}
        suites:
          - suites/short.yaml
          - name: hello
            kind: latency
            prompts: ["Say hello."]
            max_tokens: 32
            requests: 3
        """
    )


def test_run_writes_one_row_per_request_and_prints_the_comparison(
    two_provider_config: Path, tmp_path: Path
) -> None:
    root = tmp_path / "results"
    code, out, _ = invoke(
        "run", str(two_provider_config), "--out", str(root), "--run-id", "r1", "--no-progress"
    )
    assert code == 0, out
    assert "steady" in out and "embedded (simulated)" in out

    rows = pd.read_parquet(root)
    assert REQUIRED_COLUMNS <= set(rows.columns)
    assert len(rows) == (6 + 3) * 2
    assert set(rows["run_id"]) == {"r1"}
    assert (rows["status"] == "ok").all(), rows[["status", "error_message"]]
    assert sorted(rows["request_index"]) == list(range(18))

    steady = rows[rows["provider"] == "steady"]
    # The profile: first text token 80 ms after the request, 12 tokens 10 ms apart.
    assert steady["ttft_s"].min() >= 0.080
    assert steady["ttft_s"].median() < 0.080 + 0.050
    assert steady["output_tokens"].eq(12).all()
    assert steady["text_chunks"].eq(12).all()
    assert steady["itl_s"].median() == pytest.approx(0.010, abs=0.003)
    assert steady["e2e_s"].min() >= 0.080 + 11 * 0.010
    assert (steady["input_tokens"] > 0).all()
    assert steady["cost_usd"].isna().all()  # a simulator has no price: null, never 0
    # Same prompt, same seed: same artificial answer.
    by_case = steady.groupby(["suite", "case_id"])["response_text"].nunique()
    assert (by_case == 1).all()

    embedded = rows[rows["provider"] == "embedded"]
    assert embedded["simulated"].all() and not steady["simulated"].any()
    assert embedded["output_tokens"].eq(5).all()
    assert embedded["ttft_s"].min() >= 0.030

    via_duckdb = duckdb.sql(
        f"select run_id, count(*) n from read_parquet('{root}/**/*.parquet') group by run_id"
    ).fetchall()
    assert via_duckdb == [("r1", 18)]

    manifest = json.loads((root / "r1" / "_manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["rows_written"] == 18 == manifest["planned_requests"]
    assert manifest["versions"]["litellm"] and manifest["versions"]["python"]
    assert len(manifest["config_hash"]) == 64
    assert manifest["ended_at"] >= manifest["started_at"]
    assert manifest["providers"]["embedded"]["simulated"] is True

    code, out, _ = invoke("summarize", str(root), "--format", "json")
    assert code == 0
    summary = {(r["suite"], r["provider"]): r for r in json.loads(out)}
    line = summary[("short", "steady")]
    assert line["requests"] == 6 and line["errors"] == 0
    assert 80 <= line["ttft_p50_ms"] < 130
    assert line["cost_usd"] is None
    assert ("short", "embedded (simulated)") in summary


def test_failing_providers_become_error_rows_and_the_run_goes_on(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        run: {{name: faults, timeout_s: 5}}
        providers:
          - name: ok
            model: openai/fast
            api_base: {sim.api_base}
          - name: server-error
            model: openai/broken
            api_base: {sim.api_base}
            optional: true  # failing on purpose: reported, and the run exits 0
          - name: refused
            model: openai/anything
            api_base: http://127.0.0.1:9/v1
            optional: true
        suites:
          - {{name: s, kind: latency, prompts: ["hi"], requests: 3, max_tokens: 8}}
        """
    )
    root = tmp_path / "out"
    code, out, _ = invoke("run", str(config), "--out", str(root), "--no-progress")
    assert code == 0, out
    rows = pd.read_parquet(root)
    assert len(rows) == 9
    by = rows.groupby("provider")
    assert (by.get_group("ok")["status"] == "ok").all()
    broken = by.get_group("server-error")
    assert (broken["status"] == "error").all()
    assert set(broken["error_type"]) == {"http_500"}
    assert set(broken["http_status"]) == {500}
    refused = by.get_group("refused")
    # Its warm-up could not connect (after retries), so nothing more was sent to it.
    assert set(refused["error_type"]) == {"provider_unavailable"}
    assert refused["error_message"].str.contains("connection_error").all()
    assert refused["ttft_s"].isna().all() and refused["e2e_s"].isna().all()
    code, out, _ = invoke("summarize", str(root))
    assert "100.0%" in out  # error rate of the failing providers


def test_rows_are_flushed_while_the_run_goes_on_and_ctrl_c_keeps_them(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    import signal
    import subprocess
    import time

    config = write_config(
        """
        run: {name: long, flush_s: 0.2, concurrency: 2}
        providers:
          - name: slowish
            simulate: {ttft_ms: 20, itl_ms: 10, output_tokens: 10}
        suites:
          - {name: s, kind: latency, prompts: ["a b c"], requests: 400, max_tokens: 16}
        """
    )
    root = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            str(config),
            "--out",
            str(root),
            "--run-id",
            "long",
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not list((root / "long").glob("part-*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.1)
    parts_while_running = list((root / "long").glob("part-*.parquet"))
    assert parts_while_running, "no Parquet part was written while the run was going on"
    assert proc.poll() is None, "the run ended before it could be interrupted"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err

    manifest = json.loads((root / "long" / "_manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    rows = pq.read_table(root).to_pandas()
    assert 0 < len(rows) < 400
    assert manifest["rows_written"] == len(rows)
    assert set(rows["status"]) <= {"ok", "cancelled"}
    assert (rows["status"] == "ok").sum() >= 1
    assert rows["request_index"].is_unique
