"""Open-loop queueing end to end against the simulator: no coordinated omission.

The conftest simulator's ``steady`` profile has fixed timings (no jitter): TTFT
80 ms, then 11 more tokens 10 ms apart, so one request keeps the server busy for
at least S = 0.080 + 11 × 0.010 = 0.190 s. At 20 req/s request i is scheduled at
i × 0.05 s. Behind a provider ``concurrency: 1`` it can be written only after
the i requests before it ended, at ≥ i × S, so its queue wait is
≥ i × (0.190 - 0.050) = i × 0.140 s, and the user waits that plus the
provider's own latency. Lower bounds are strict (the server cannot be faster
than its sleeps); upper bounds leave room for a loaded 2-core machine.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.sim import SimProcess

S = 0.080 + 11 * 0.010  # the steady profile's service time
GAP = 1 / 20  # scheduled inter-arrival at 20 req/s
N = 20  # requests per provider: a 0.95 s schedule, long enough for the tolerance


def run(config: Path, root: Path) -> pd.DataFrame:
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    return pd.read_parquet(root)


def summary_of(root: Path) -> dict[str, dict[str, Any]]:
    out = CliRunner().invoke(main, ["summarize", str(root), "--format", "json"])
    assert out.exit_code == 0, out.output
    return {f"{r['provider']}|{r['load_level']}": r for r in json.loads(out.stdout)}


@pytest.fixture(scope="module")
def open_run(
    sim: SimProcess, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, pd.DataFrame]:
    """One run, three providers side by side on the same 20 req/s schedule:
    ``capped`` (concurrency 1), ``pair`` (concurrency 2) and ``free`` (no cap)."""
    base = tmp_path_factory.mktemp("open")
    config = base / "config.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            run: {{name: open, concurrency: 32}}
            providers:
              - {{name: capped, model: openai/steady, api_base: "{sim.api_base}", concurrency: 1}}
              - {{name: pair, model: openai/steady, api_base: "{sim.api_base}", concurrency: 2}}
              - {{name: free, model: openai/steady, api_base: "{sim.api_base}"}}
            suites:
              - name: arrivals
                kind: latency
                prompts: ["one two three"]
                max_tokens: 12
                requests: {N}
                load: {{pattern: rate, levels: [20]}}
            """
        )
    )
    root = base / "out"
    return root, run(config, root)


def rows_of(rows: pd.DataFrame, provider: str) -> pd.DataFrame:
    mine = rows[rows["provider"] == provider].sort_values("request_index")
    assert len(mine) == N and (mine["status"] == "ok").all()
    return mine.reset_index(drop=True)


def test_queue_wait_and_user_latency_follow_the_schedule_behind_a_cap(
    open_run: tuple[Path, pd.DataFrame],
) -> None:
    rows = rows_of(open_run[1], "capped")
    i = np.arange(N)
    # Scheduled arrivals are kept exactly: i × 50 ms from the phase start.
    assert rows["scheduled_s"].to_numpy() == pytest.approx(i * GAP, abs=1e-6)
    wait = rows["queue_wait_s"].to_numpy()
    # queue wait = sent - scheduled, always.
    assert wait == pytest.approx((rows["sent_s"] - rows["scheduled_s"]).to_numpy(), abs=1e-9)
    # Hand-computed: request i waits ≥ i × (S - GAP) = i × 0.14 s (2.66 s for the
    # last one); ≤ that + 100 ms + 60 ms of client overhead per request before it.
    expected = i * (S - GAP)
    assert (wait >= expected - 1e-3).all(), wait
    assert (wait <= expected + 0.1 + 0.06 * i).all(), wait
    # Sends are serialised: each ≥ S after the one before (the cap held).
    assert (np.diff(rows["sent_s"].to_numpy()) >= S - 1e-3).all()
    # The user sees queue wait + the provider's latency: e2e_i ≥ i × 0.14 + 0.19.
    user_e2e = wait + rows["e2e_s"].to_numpy()
    assert (user_e2e >= expected + S - 1e-3).all()
    # The provider's own TTFT stays the bare 80 ms: the queue is not hidden in it,
    # nor is it lost: it is beside it.
    assert rows["ttft_s"].median() == pytest.approx(0.080, abs=0.05)
    # The runner itself was on time; the wait was the cap's, not the event loop's.
    assert rows["schedule_lag_s"].median() < 0.02


def test_uncapped_open_loop_has_no_queue(open_run: tuple[Path, pd.DataFrame]) -> None:
    rows = rows_of(open_run[1], "free")
    assert rows["queue_wait_s"].median() < 0.02
    assert rows["queue_wait_s"].max() < 0.2
    # Sent on schedule: the send span is the scheduled one, 19 × 50 ms = 0.95 s.
    span = rows["sent_s"].max() - rows["sent_s"].min()
    assert span == pytest.approx((N - 1) * GAP, abs=0.1)


def test_provider_concurrency_caps_a_rate_phase(open_run: tuple[Path, pd.DataFrame]) -> None:
    rows = rows_of(open_run[1], "pair")
    # Requests in flight = intervals [sent, sent + e2e]; sweep their ends.
    events = sorted(
        [(s, 1) for s in rows["sent_s"]]
        + [(s + e, -1) for s, e in zip(rows["sent_s"], rows["e2e_s"])]
    )
    in_flight, peak = 0, 0
    for _, step in events:  # at equal times an end (-1) sorts before a start
        in_flight += step
        peak = max(peak, in_flight)
    # Uncapped, 20 req/s × 0.19 s would keep ~4 in flight; the cap holds it at 2,
    # and it binds (2 were in flight at once).
    assert peak == 2
    free = rows_of(open_run[1], "free")
    # The uncapped provider on the same schedule overlaps more than 2 requests.
    overlapping = free["sent_s"].to_numpy()[3:] < (free["sent_s"] + free["e2e_s"]).to_numpy()[:-3]
    assert overlapping.any()


def test_summary_marks_the_capped_level_over_capacity(
    open_run: tuple[Path, pd.DataFrame],
) -> None:
    root, _ = open_run
    summary = summary_of(root)
    capped, pair, free = (summary[f"{p}|rate=20"] for p in ("capped", "pair", "free"))
    # Offered: 19 gaps over 19 × 50 ms = 20 req/s exactly.
    for line in (capped, free, pair):
        assert line["offered_rps"] == pytest.approx(20.0, rel=1e-6)
    # Achieved behind concurrency 1: 19 gaps of ≥ 0.19 s: ≤ 1 / 0.19 = 5.26 req/s.
    assert capped["achieved_rps"] <= 1 / S + 1e-6
    assert capped["achieved_rps"] > 3.0
    assert capped["over_capacity"] is True
    # Concurrency 2: capacity 2 / 0.19 = 10.5 req/s < 20.
    assert pair["over_capacity"] is True
    assert free["achieved_rps"] == pytest.approx(20.0, rel=0.15)
    assert free["over_capacity"] is False
    # User-seen TTFT p50 behind the cap: the median of waits i × 0.14 s
    # (i = 0..19) is 9.5 × 0.14 = 1.33 s, plus the 80 ms TTFT: 1410 ms at least.
    assert capped["user_ttft_p50_ms"] >= 1410 - 1
    assert capped["user_ttft_p50_ms"] <= 1410 + 700
    assert capped["ttft_p50_ms"] < 200  # the provider's own TTFT, beside it
    assert capped["user_ttft_p50_ms_ci_low"] <= capped["user_ttft_p50_ms"]
    assert capped["user_ttft_p50_ms"] <= capped["user_ttft_p50_ms_ci_high"]
    assert capped["queue_wait_p50_ms"] >= 1330 - 1
    assert capped["user_e2e_p50_ms"] >= 1330 + S * 1000 - 1
    # Uncapped: the user sees what the provider serves.
    assert free["user_ttft_p50_ms"] == pytest.approx(free["ttft_p50_ms"], abs=25)
    # The table a person reads says so too.
    table = CliRunner().invoke(main, ["summarize", str(root)])
    assert "over capacity" in table.output and "OVER" in table.output
    # And the manifest names the levels that were over capacity.
    manifest = json.loads(next(root.glob("*/_manifest.json")).read_text())
    over = manifest["open_loop"]["over_capacity"]
    assert sorted(over) == ["arrivals rate=20 capped", "arrivals rate=20 pair"]
    by_provider = {lv["provider"]: lv for lv in manifest["open_loop"]["levels"]}
    assert by_provider["capped"]["achieved_rps"] == pytest.approx(capped["achieved_rps"])


def test_closed_loop_queue_wait_is_the_wait_for_a_slot(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # Four workers, a global cap of two: two requests go at once, the other two
    # wait for the first to end (≥ S = 0.19 s); from then on every worker that
    # finishes picks its next request while two others hold the slots, so 6 of
    # the 8 requests wait about one service time.
    config = write_config(
        f"""
        run: {{name: closed, concurrency: 2}}
        providers:
          - {{name: steady, model: openai/steady, api_base: "{sim.api_base}"}}
        suites:
          - name: sweep
            kind: latency
            prompts: ["one two three"]
            max_tokens: 12
            requests: 8
            load: {{pattern: concurrency, levels: [4]}}
        """
    )
    rows = run(config, tmp_path / "out")
    assert (rows["status"] == "ok").all() and len(rows) == 8
    wait = np.sort(rows["queue_wait_s"].to_numpy())
    assert (wait[:2] < 0.05).all(), wait
    # ≥ S minus the few ms between two workers picking their first requests.
    assert (wait[2:] >= S - 0.05).all(), wait
    assert (wait[2:] <= S + 0.2).all(), wait
    assert rows["schedule_lag_s"].isna().all()  # no schedule in a closed loop
    assert rows["scheduled_s"].notna().all() and (rows["sent_s"] >= rows["scheduled_s"]).all()
    line = next(iter(summary_of(tmp_path / "out").values()))
    assert line["queue_wait_p50_ms"] >= (S - 0.05) * 1000
    assert "offered_rps" not in line or line["offered_rps"] is None  # closed loop: no offer


def test_rate_limiter_wait_is_queue_wait(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # rpm 600 = 10 requests/s, with a bucket of one second's worth (10) full at
    # the phase start; 20 requests offered at 40/s (i × 25 ms). By t seconds at
    # most 10 + 10 t requests can have passed, so request i (i ≥ 10) is sent at
    # ≥ (i - 9) / 10 s: request 19 at ≥ 1.0 s, scheduled at 0.475 s.
    config = write_config(
        f"""
        run: {{name: paced}}
        providers:
          - {{name: fast, model: openai/fast, api_base: "{sim.api_base}", rpm: 600}}
        suites:
          - name: arrivals
            kind: latency
            prompts: ["a b"]
            max_tokens: 8
            requests: 20
            load: {{pattern: rate, levels: [40]}}
        """
    )
    rows = run(config, tmp_path / "out").sort_values("request_index").reset_index(drop=True)
    assert (rows["status"] == "ok").all() and len(rows) == 20
    i = np.arange(20)
    earliest = np.maximum(i * 0.025, (i - 9) / 10)
    assert (rows["sent_s"].to_numpy() >= earliest - 1e-3).all(), rows["sent_s"].to_numpy()
    wait = rows["queue_wait_s"].to_numpy()
    assert wait[19] >= 1.0 - 0.475 - 1e-3
    assert wait[19] <= 1.0 - 0.475 + 0.3
    assert (wait[:10] < 0.1).all()  # the full bucket let the first ten through


def test_a_retried_request_waits_from_its_scheduled_arrival(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # The warm-up takes the script's first "ok"; measured request 0 gets a 429
    # with Retry-After 0.3 s, then succeeds. Its user-seen latency runs from its
    # scheduled arrival (0 s) to the end of its second attempt: ≥ the first
    # attempt + 0.3 s back-off + TTFT 20 ms.
    config = write_config(
        """
        run: {name: retried}
        providers:
          - name: flaky
            simulate: {ttft_ms: 20, itl_ms: 2, output_tokens: 4, script: [ok, rate_limit],
                       retry_after_s: 0.3}
            max_retries: 1
        suites:
          - name: arrivals
            kind: latency
            prompts: ["a b"]
            max_tokens: 8
            requests: 4
            load: {pattern: rate, levels: [10]}
        """
    )
    rows = run(config, tmp_path / "out").sort_values("request_index").reset_index(drop=True)
    assert (rows["status"] == "ok").all()
    first = rows.iloc[0]
    assert first["attempts"] == 2 and first["retry_wait_s"] == pytest.approx(0.3)
    assert first["scheduled_s"] == pytest.approx(0.0, abs=1e-6)
    assert first["queue_wait_s"] >= 0.3
    assert first["queue_wait_s"] <= 0.3 + 0.25
    assert first["queue_wait_s"] + first["ttft_s"] >= 0.3 + 0.020
    # The others were not retried and did not wait (10 req/s, uncapped).
    assert (rows["attempts"].iloc[1:] == 1).all()
    assert (rows["queue_wait_s"].iloc[1:] < 0.1).all()
