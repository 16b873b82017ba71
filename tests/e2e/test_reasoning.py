"""Reasoning and multi-token chunks, through both transports, against the simulator.

The simulator's reasoning profiles stream ``delta.reasoning_content`` before the
answer and count it in ``completion_tokens``; with jitter 0 every token is due at
``ttft_ms + i * itl_ms`` after the request arrives (reasoning tokens first), and an
event of several tokens when its last token is. Lower bounds are strict (the
server sends nothing early), upper bounds generous (a loaded 2-core machine).
"""

from __future__ import annotations

import asyncio
import json
import statistics
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.providers.direct import DirectClient
from harness.providers.litellm import import_litellm, send
from harness.providers.trace import Endpoint
from harness.request import RequestSpec
from harness.sim import SimProcess, SimProfile

# Tokens at 60, 70, ..., 330 ms: 20 reasoning (60-250 ms), then 8 text (260-330 ms).
THINKER = SimProfile(ttft_ms=60, itl_ms=10, reasoning_tokens=20, output_tokens=8, seed=5)
PROFILES = {
    "thinker": THINKER,
    # The same stream, but usage says only completion_tokens = 28.
    "quiet": THINKER.model_copy(update={"usage_reasoning": False}),
    # 20 tokens at 50, 60, ..., 240 ms in 5 events of 4, sent at 80, 120, 160, 200, 240 ms.
    "chunky": SimProfile(ttft_ms=50, itl_ms=10, output_tokens=20, tokens_per_chunk=4, seed=5),
    # 6 reasoning + 6 text tokens at 50, 60, ..., 160 ms in events of 3: reasoning
    # events at 70 and 100 ms, text events at 130 and 160 ms.
    "chunky-thinker": SimProfile(
        ttft_ms=50, itl_ms=10, reasoning_tokens=6, output_tokens=6, tokens_per_chunk=3, seed=5
    ),
}
# Common words, each one token under o200k_base with or without a leading space,
# so the local count of the stream equals the simulator's one token per word.
PROMPT = "the cat sat on the mat and then it ran home"
TRANSPORTS = ("direct", "litellm")


@pytest.fixture(scope="module")
def reasoning_sim() -> Iterator[SimProcess]:
    with SimProcess(PROFILES) as process:
        yield process


def spec(case: str = "c0", max_tokens: int = 64) -> RequestSpec:
    return RequestSpec(
        suite="s",
        suite_kind="latency",
        case_id=case,
        repeat=0,
        provider="p",
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=max_tokens,
    )


def rows_for(api_base: str, model: str, transport: str, n: int = 3) -> list[dict[str, Any]]:
    """``n`` requests one after another, after a warm-up, through one transport."""
    ep = Endpoint(
        provider="p",
        model=f"openai/{model}",
        simulated=True,
        api_base=api_base,
        api_key="sim-no-key",
        params={},
        timeout_s=10.0,
        transport=transport,
    )
    requests = [spec(f"c{i}") for i in range(n)]

    async def run() -> list[dict[str, Any]]:
        if transport == "litellm":
            litellm = import_litellm()
            await send(litellm, ep, spec("warm"))
            return [await send(litellm, ep, r) for r in requests]
        async with DirectClient() as client:
            await client.send(ep, spec("warm"))
            return [await client.send(ep, r) for r in requests]

    rows = asyncio.run(run())
    assert all(r["status"] == "ok" for r in rows), [r["error_message"] for r in rows]
    return rows


def median(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


# Offsets from t0 have strict lower bounds on every row: the server sends nothing
# early. Differences of two client stamps (reasoning time, ITL, TPOT) are checked
# at the median of 5 rows: one stalled read on a loaded machine moves either end.
LATE = 1.0  # s: how late a loaded 2-core machine may read a chunk


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reasoning_profile_timings(reasoning_sim: SimProcess, transport: str) -> None:
    rows = rows_for(reasoning_sim.api_base, "thinker", transport, n=5)
    for row in rows:
        # first reasoning token at 60 ms; first text at 60 + 20 * 10 = 260 ms;
        # last text at 260 + 7 * 10 = 330 ms
        assert 0.060 <= row["first_reasoning_s"] < 0.060 + LATE
        assert 0.260 <= row["ttft_s"] < 0.260 + LATE
        assert row["e2e_s"] >= 0.330
        # output speed = 8 visible tokens / (E2E - TTFT), not 28 / (E2E - TTFT)
        assert row["output_tps"] == pytest.approx(8 / (row["e2e_s"] - row["ttft_s"]))
    # reasoning time: 260 - 60 = 200 ms
    assert 0.200 - 0.010 <= median(rows, "reasoning_s") < 0.200 + 0.100
    # 8 visible tokens: ITL = (330 - 260) / (8 - 1) = 10 ms; TPOT likewise plus the
    # stream's tail (litellm's end-of-stream work). Dividing by all 28 output
    # tokens would give 70 / 27 = 2.6 ms.
    assert 0.009 <= median(rows, "itl_s") < 0.025
    assert 0.009 <= median(rows, "tpot_s") < 0.050
    # 8 / 0.070 = 114 tokens/s at most (plus slack), where 28 / 0.070 = 400
    assert 20 < median(rows, "output_tps") < 8 / 0.065


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_multi_token_chunks_timings(reasoning_sim: SimProcess, transport: str) -> None:
    rows = rows_for(reasoning_sim.api_base, "chunky", transport, n=5)
    for row in rows:
        # the first event carries tokens due at 50..80 ms: sent at 80 ms; the last at 240 ms
        assert 0.080 <= row["ttft_s"] < 0.080 + LATE
        assert row["e2e_s"] >= 0.240
        assert row["reasoning_s"] is None and row["reasoning_chunks"] == 0
    # ITL = (240 - 80) / (20 - 1) = 160 / 19 = 8.42 ms (the event gap is 40 ms)
    assert 0.160 / 19 - 0.001 <= median(rows, "itl_s") < 0.020


# Hand-worked token columns per profile (the same through both transports).
EXPECTED: dict[str, dict[str, Any]] = {
    "thinker": {
        "output_tokens": 28,  # 20 reasoning + 8 text
        "reasoning_tokens": 20,
        "reasoning_tokens_client": 20,
        "visible_tokens": 8,  # 28 - 20
        "reasoning_chunks": 20,
        "text_chunks": 8,
        "chunk_tokens": [1] * 8,
        "tokens_per_chunk": 1.0,
        "tokens_mismatch": False,  # 28 = 20 + 8 chunks
    },
    "quiet": {
        "output_tokens": 28,
        "reasoning_tokens": None,  # not in usage, and litellm's own count is not usage
        "reasoning_tokens_client": 20,
        "visible_tokens": 8,  # round(28 * 8 / (8 + 20)) = 8
        "reasoning_chunks": 20,
        "text_chunks": 8,
        "chunk_tokens": [1] * 8,
        "tokens_per_chunk": 1.0,
        "tokens_mismatch": False,
    },
    "chunky": {
        "output_tokens": 20,
        "reasoning_tokens": None,
        "reasoning_tokens_client": 0,
        "visible_tokens": 20,
        "reasoning_chunks": 0,
        "text_chunks": 5,
        "chunk_tokens": [4] * 5,
        "tokens_per_chunk": 4.0,  # 20 / 5
        "tokens_mismatch": True,  # 20 tokens in 5 chunks
    },
    "chunky-thinker": {
        "output_tokens": 12,
        "reasoning_tokens": 6,
        "reasoning_tokens_client": 6,
        "visible_tokens": 6,
        "reasoning_chunks": 2,
        "text_chunks": 2,
        "chunk_tokens": [3, 3],
        "tokens_per_chunk": 3.0,
        "tokens_mismatch": True,  # 12 tokens in 4 chunks
    },
}


@pytest.mark.parametrize("model", list(EXPECTED))
def test_both_transports_record_the_same_reasoning_and_tokens(
    reasoning_sim: SimProcess, model: str
) -> None:
    direct = rows_for(reasoning_sim.api_base, model, "direct", n=2)
    via_litellm = rows_for(reasoning_sim.api_base, model, "litellm", n=2)
    for a, b in zip(direct, via_litellm, strict=True):
        for key, value in EXPECTED[model].items():
            assert a[key] == value, (key, a[key])
            assert b[key] == value, (key, b[key])
        for key in ("response_text", "finish_reason", "input_tokens"):
            assert a[key] == b[key], key
        assert a["ttft_s"] is not None and b["ttft_s"] is not None


def test_chunky_thinker_reasoning_time(reasoning_sim: SimProcess) -> None:
    rows = rows_for(reasoning_sim.api_base, "chunky-thinker", "direct", n=5)
    for row in rows:
        # reasoning events at 70, 100 ms; text events at 130, 160 ms
        assert 0.070 <= row["first_reasoning_s"] < 0.070 + LATE
        assert 0.130 <= row["ttft_s"] < 0.130 + LATE
    # reasoning time 130 - 70 = 60 ms; ITL = (160 - 130) / (6 - 1) = 6 ms
    assert 0.060 - 0.010 <= median(rows, "reasoning_s") < 0.060 + 0.100
    assert 0.006 - 0.001 <= median(rows, "itl_s") < 0.020


def test_a_ttft_probe_meets_its_slo_and_summaries_show_reasoning(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # max_tokens 1: one text chunk, so no ITL; the ITL SLO does not apply to it.
    config = write_config(
        """
        run: {name: probe, concurrency: 2}
        providers:
          - name: thinker
            simulate: {ttft_ms: 20, itl_ms: 2, reasoning_tokens: 5, output_tokens: 8}
          - name: plain
            simulate: {ttft_ms: 20, itl_ms: 2, output_tokens: 8}
        suites:
          - name: probe
            kind: latency
            prompts: ["the cat sat on the mat"]
            max_tokens: 1
            requests: 4
            slo: {ttft_ms: 5000, itl_ms: 50}
        """
    )
    root = tmp_path / "results"
    runner = CliRunner()
    result = runner.invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["summarize", str(root), "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = {r["provider"]: r for r in json.loads(result.stdout)}
    thinker, plain = summary["thinker (simulated)"], summary["plain (simulated)"]
    assert thinker["requests"] == plain["requests"] == 4
    # every probe is ok with TTFT far under 5 s: all of them count (it was 0 before)
    assert thinker["goodput"] == plain["goodput"] == 1.0
    assert thinker["itl_p50_ms"] is None
    # 5 reasoning tokens from 20 ms, 2 ms apart: text at 20 + 5 * 2 = 30 ms, so
    # reasoning time 10 ms
    assert thinker["reasoning_tokens_mean"] == 5.0
    assert 10.0 - 5.0 <= thinker["reasoning_p50_ms"] < 10.0 + 150.0
    assert plain.get("reasoning_p50_ms") is None
    result = runner.invoke(main, ["summarize", str(root)])
    assert "reasoning p50 (ms)" in result.stdout
