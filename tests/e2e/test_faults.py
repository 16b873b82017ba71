"""Every fault class becomes a row with a precise error_type; retries and pacing work."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.run.limits import RateLimiter

EXPECTED = {
    "rate_limit": "rate_limited",
    "server_error": "http_503",
    "hang_before_first_token": "timeout_first_token",
    "hang_mid_stream": "timeout_mid_stream",
    "connection_reset": "stream_error",
    "malformed_chunk": "malformed_stream",
    "no_finish": "stream_error",
    "empty": "empty_response",
    "content_filter": "content_filtered",
}


def run(config: Path, root: Path) -> pd.DataFrame:
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    return pd.read_parquet(root)


@pytest.mark.parametrize("transport", ["direct", "litellm"])
def test_every_fault_class_is_a_precise_row(
    transport: str, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    script = ["ok", *EXPECTED]  # the first request is the unrecorded warm-up
    config = write_config(
        f"""
        run: {{name: faults, warmup_requests: 1, concurrency: 1}}
        providers:
          - name: faulty
            simulate: {{ttft_ms: 5, itl_ms: 2, output_tokens: 8, hang_s: 5, script: {json.dumps(script)}}}
            transport: {transport}
            max_retries: 0
            timeout_s: 1.0
            first_token_timeout_s: 0.5
            concurrency: 1
            optional: true  # its warm-up may time out on a loaded machine: not a failure here
          - name: healthy
            simulate: {{ttft_ms: 5, itl_ms: 2, output_tokens: 8}}
            transport: {transport}
        suites:
          - {{name: s, kind: latency, prompts: ["a b c d e f"], requests: {len(EXPECTED) + 1}, max_tokens: 16}}
        """
    )
    rows = run(config, tmp_path / "out")
    faulty = rows[rows["provider"] == "faulty"].sort_values("request_index")
    got = faulty["error_type"].tolist()
    assert got[:-1] == list(EXPECTED.values()), got
    assert pd.isna(got[-1])  # script exhausted: healthy again
    assert (faulty["status"].iloc[:-1] == "error").all()
    assert (rows[rows["provider"] == "healthy"]["status"] == "ok").all()
    assert faulty["error_message"].iloc[:-1].notna().all()


def test_retries_honour_retry_after_and_use_the_final_attempt(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        """
        run: {name: retries, warmup_requests: 0}
        providers:
          - name: recovering
            simulate: {ttft_ms: 20, itl_ms: 2, output_tokens: 4, retry_after_s: 0.3,
                       script: [rate_limit, server_error]}
            max_retries: 3
            retry_base_s: 0.05
            concurrency: 1
          - name: hopeless
            optional: true  # never succeeds, on purpose: the run still exits 0
            simulate: {ttft_ms: 5, faults: {server_error: 1.0}}
            max_retries: 2
            retry_base_s: 0.01
        suites:
          - {name: s, kind: latency, prompts: ["x y"], requests: 2, max_tokens: 8}
        """
    )
    rows = run(config, tmp_path / "out")
    recovering = rows[rows["provider"] == "recovering"].sort_values("request_index")
    first = recovering.iloc[0]
    assert first["status"] == "ok"
    assert first["attempts"] == 3  # 429, 503, then success
    assert first["retry_wait_s"] >= 0.3  # Retry-After was honoured
    assert first["ttft_s"] < 0.1  # latency of the final attempt, not of the retries
    assert recovering.iloc[1]["attempts"] == 1
    hopeless = rows[rows["provider"] == "hopeless"]
    assert (hopeless["attempts"] == 3).all()
    assert set(hopeless["error_type"]) == {"http_503"}
    manifest = json.loads(next((tmp_path / "out").glob("*/_manifest.json")).read_text())
    assert manifest["retries"] == 2 + 2 * 2


def test_rate_limit_paces_requests(write_config: Callable[..., Path], tmp_path: Path) -> None:
    config = write_config(
        """
        run: {name: paced, warmup_requests: 0}
        providers:
          - name: p
            simulate: {ttft_ms: 1, itl_ms: 0, output_tokens: 2}
            rpm: 300          # 5 requests/s; a bucket of one second
            concurrency: 8
        suites:
          - {name: s, kind: latency, prompts: ["a b c"], requests: 16, max_tokens: 8}
        """
    )
    rows = run(config, tmp_path / "out")
    assert len(rows) == 16
    starts = (rows["started_at"] - rows["started_at"].min()).dt.total_seconds().sort_values()
    # 5 at once, then 11 more at 5/s: the last starts after ~2.2 s.
    assert 1.9 <= starts.iloc[-1] <= 3.5
    assert (starts.iloc[:5] < 0.2).all()


def test_rate_limiter_math() -> None:
    import asyncio

    async def scenario() -> float:
        limiter = RateLimiter(rpm=120)  # 2/s, a bucket of 2
        limiter._requests = 0.0  # empty bucket: every request waits 0.5 s
        t = time.monotonic()
        for _ in range(3):
            await limiter.acquire()
        return time.monotonic() - t

    elapsed = asyncio.run(scenario())
    assert elapsed == pytest.approx(1.5, abs=0.2)


def test_a_simulator_that_logs_a_lot_does_not_freeze(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # Every dropped stream used to log a traceback into a pipe nobody read; after
    # 64 KiB the simulator froze and every later request timed out.
    config = write_config(
        """
        run: {name: noisy, concurrency: 16}
        providers:
          - name: noisy
            simulate: {ttft_ms: 5, itl_ms: 2, output_tokens: 12, faults: {malformed_chunk: 0.5}}
            max_retries: 0
            timeout_s: 2
            concurrency: 16
        suites:
          - {name: s, kind: latency, prompts: ["a b c d"], requests: 400, max_tokens: 16}
        """
    )
    rows = run(config, tmp_path / "out")
    assert len(rows) == 400
    assert set(rows["error_type"].dropna()) == {"malformed_stream"}
    assert any((tmp_path / "out").glob("*/_sim.log"))
