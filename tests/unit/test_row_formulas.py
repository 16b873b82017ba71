"""The row formulas of ``build_row``, on hand-built traces with hand-worked numbers.

After TTFT only visible tokens count (output minus reasoning):
ITL = (last text chunk - first text chunk) / (visible - 1), TPOT = (E2E - TTFT) / (visible - 1),
output speed = visible / (E2E - TTFT); all three undefined with fewer than two text chunks.
Each text part below is one common English word with its leading space, which the
local tokenizer (o200k_base) pre-splits into one piece per word and encodes as one
token per word.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from harness.cost.pricing import price_row
from harness.providers.trace import Endpoint, StreamTrace, build_row
from harness.report.summary import summarize
from harness.request import RequestSpec

ENDPOINT = Endpoint(
    provider="p",
    model="openai/m",
    simulated=True,
    api_base="http://127.0.0.1:1/v1",
    api_key=None,
    params={},
    timeout_s=10.0,
)


def request(max_tokens: int = 256) -> RequestSpec:
    return RequestSpec(
        suite="s",
        suite_kind="latency",
        case_id="c",
        repeat=0,
        provider="p",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=max_tokens,
    )


def trace(
    text: list[tuple[float, str]],
    *,
    reasoning: list[tuple[float, str]] | None = None,
    end_s: float,
    usage: dict[str, int | None] | None = None,
    finish: str | None = "stop",
) -> StreamTrace:
    """A trace as a transport fills it: a role chunk at 1 ms, then reasoning, then text."""
    t = StreamTrace(started_at=datetime(2026, 1, 1, tzinfo=UTC))
    t.on_chunk(0.001)
    for now, part in reasoning or []:
        t.on_chunk(now)
        t.on_reasoning(now, part)
    for now, part in text:
        t.on_chunk(now)
        t.on_text(now, part)
    t.end_s = end_s
    t.finish_reason = finish
    t.usage = usage or {}
    return t


def row_of(t: StreamTrace, max_tokens: int = 256) -> dict[str, Any]:
    """The row as the pipeline stores it: built by the transport, priced by the pipeline."""
    row = build_row(t, ENDPOINT, request(max_tokens))
    price_row(row, ENDPOINT.price)
    return row


# 90 reasoning chunks 10 ms apart from 100 ms (100, 110, ..., 990 ms), then 10 text
# chunks 10 ms apart from 1000 ms (1000, 1010, ..., 1090 ms); the stream ends at 1090 ms.
REASONING = [(0.100 + 0.010 * i, " step") for i in range(90)]
TEXT = [(1.000 + 0.010 * j, " answer") for j in range(10)]


def test_reasoning_then_text_counts_only_visible_tokens_after_ttft() -> None:
    row = row_of(
        trace(
            TEXT,
            reasoning=REASONING,
            end_s=1.090,
            usage={"output_tokens": 100, "reasoning_tokens": 90},
        )
    )
    assert row["status"] == "ok"
    assert row["ttft_s"] == pytest.approx(1.000)
    assert row["first_reasoning_s"] == pytest.approx(0.100)
    # reasoning time: first text - first reasoning = 1000 - 100 = 900 ms
    assert row["reasoning_s"] == pytest.approx(0.900)
    assert row["reasoning_chunks"] == 90
    assert row["reasoning_tokens"] == 90 and row["reasoning_tokens_client"] == 90
    # visible = output - reasoning = 100 - 90 = 10
    assert row["visible_tokens"] == 10
    # ITL = (1090 - 1000) / (10 - 1) = 90 / 9 = 10 ms
    assert row["itl_s"] == pytest.approx(0.010)
    # TPOT = (E2E - TTFT) / (10 - 1) = (1090 - 1000) / 9 = 10 ms
    # (dividing by all 100 output tokens gave 90 / 99 = 0.91 ms)
    assert row["tpot_s"] == pytest.approx(0.010)
    # output speed = 10 / (1.090 - 1.000) = 10 / 0.09 = 111.1 tokens/s
    assert row["output_tps"] == pytest.approx(111.111, rel=1e-4)
    assert row["chunk_tokens"] == [1] * 10 and row["tokens_per_chunk"] == 1.0
    # 100 output tokens = 90 reasoning chunks + 10 text chunks: no mismatch
    assert row["tokens_mismatch"] is False


def test_reasoning_missing_from_usage_splits_the_providers_count_by_the_stream() -> None:
    # The provider counts 150 output tokens but not how many were reasoning; the
    # local tokenizer finds 90 reasoning and 10 text tokens in the stream, so the
    # visible share is 10 / (10 + 90) of 150 = 15 (150 - 90 = 60 would make a
    # tokenizer difference on the long reasoning look like answer tokens).
    row = row_of(trace(TEXT, reasoning=REASONING, end_s=1.090, usage={"output_tokens": 150}))
    assert row["reasoning_tokens"] is None  # the provider's usage, as reported
    assert row["reasoning_tokens_client"] == 90
    assert row["visible_tokens"] == 15
    # ITL = (1090 - 1000) / (15 - 1) = 90 / 14 = 6.43 ms
    assert row["itl_s"] == pytest.approx(0.090 / 14)


def test_without_usage_the_stream_count_is_used() -> None:
    row = row_of(trace(TEXT, reasoning=REASONING, end_s=1.090))
    assert row["output_tokens"] is None
    assert row["reasoning_tokens_client"] == 90
    # visible = the local count of the text: 10 chunks of one token
    assert row["visible_tokens"] == 10
    assert row["tpot_s"] == pytest.approx(0.010)


def test_one_chunk_answer_has_no_itl_tpot_or_speed() -> None:
    # One SSE event at 200 ms carrying 100 words; the stream ends 1 ms later.
    t = trace([(0.200, " word" * 100)], end_s=0.201, usage={"output_tokens": 100})
    row = row_of(t)
    assert row["status"] == "ok" and row["ttft_s"] == pytest.approx(0.200)
    assert row["visible_tokens"] == 100 and row["chunk_tokens"] == [100]
    assert row["tokens_per_chunk"] == 100.0
    # Fewer than two text chunks: the 1 ms after TTFT is the stream's tail, not
    # generation (it would give TPOT 0.01 ms and 100,000 tokens/s).
    assert row["itl_s"] is None and row["tpot_s"] is None and row["output_tps"] is None


def test_multi_token_chunks_divide_by_visible_tokens() -> None:
    # 5 chunks of 4 words at 100, 140, 180, 220, 260 ms; the stream ends at 260 ms.
    chunks = [(0.100 + 0.040 * i, " word word word word") for i in range(5)]
    row = row_of(trace(chunks, end_s=0.260, usage={"output_tokens": 20}))
    assert row["text_chunks"] == 5 and row["visible_tokens"] == 20
    assert row["chunk_tokens"] == [4, 4, 4, 4, 4]
    # tokens per chunk = 20 / 5 = 4
    assert row["tokens_per_chunk"] == 4.0
    # ITL = (260 - 100) / (20 - 1) = 160 / 19 = 8.42 ms (not the 40 ms chunk gap)
    assert row["itl_s"] == pytest.approx(0.160 / 19)
    assert row["tpot_s"] == pytest.approx(0.160 / 19)
    # output speed = 20 / 0.160 = 125 tokens/s
    assert row["output_tps"] == pytest.approx(125.0)
    assert row["tokens_mismatch"] is True  # 20 tokens in 5 chunks: flagged
    # Without usage the local tokenizer's count gives the same 20.
    no_usage = row_of(trace(chunks, end_s=0.260))
    assert no_usage["visible_tokens"] == 20
    assert no_usage["itl_s"] == pytest.approx(0.160 / 19)


def test_empty_answer_is_an_error_without_timing_metrics() -> None:
    row = row_of(trace([], end_s=0.050, usage={"output_tokens": 0}))
    assert row["status"] == "error" and row["error_type"] == "empty_response"
    for column in ("ttft_s", "e2e_s", "itl_s", "tpot_s", "output_tps", "reasoning_s"):
        assert row[column] is None, column
    assert row["visible_tokens"] == 0 and row["chunk_tokens"] == []
    assert row["tokens_per_chunk"] is None and row["reasoning_chunks"] == 0


def test_reasoning_cut_before_any_text_has_no_reasoning_time() -> None:
    # max_tokens ran out while reasoning: 5 reasoning chunks, no text.
    row = row_of(
        trace(
            [],
            reasoning=REASONING[:5],
            end_s=0.150,
            usage={"output_tokens": 5, "reasoning_tokens": 5},
            finish="length",
        )
    )
    assert row["status"] == "ok" and row["ttft_s"] is None
    assert row["reasoning_s"] is None and row["first_reasoning_s"] == pytest.approx(0.100)
    assert row["visible_tokens"] == 0 and row["itl_s"] is None


def test_text_that_looks_like_a_special_token_is_counted_not_refused() -> None:
    row = row_of(trace([(0.1, "<|endoftext|>"), (0.2, " end")], end_s=0.2))
    assert row["chunk_tokens"][0] >= 1 and row["chunk_tokens"][1] == 1


def test_goodput_treats_a_missing_itl_as_not_applicable() -> None:
    slo = {"s": {"ttft_ms": 500.0, "itl_ms": 50.0}}
    probe = row_of(trace([(0.200, "Yes")], end_s=0.201, usage={"output_tokens": 1}), max_tokens=1)
    one_chunk = row_of(trace([(0.300, " word" * 100)], end_s=0.301, usage={"output_tokens": 100}))
    # Two chunks 80 ms apart, 2 tokens: ITL = 80 / (2 - 1) = 80 ms > 50 ms: a miss.
    slow = row_of(trace([(0.100, " a"), (0.180, " b")], end_s=0.180, usage={"output_tokens": 2}))
    # No ITL either, but TTFT 600 ms > 500 ms: a miss.
    late = row_of(trace([(0.600, "Yes")], end_s=0.601, usage={"output_tokens": 1}), max_tokens=1)
    assert probe["itl_s"] is None and one_chunk["itl_s"] is None and late["itl_s"] is None
    assert slow["itl_s"] == pytest.approx(0.080)
    table = summarize(pd.DataFrame([probe, one_chunk, slow, late]), slo)
    # probe and one_chunk meet the SLO: 2 of 4
    assert table["goodput"].iloc[0] == pytest.approx(0.5)


def test_summary_shows_reasoning_only_for_groups_that_reason() -> None:
    reasoned = row_of(
        trace(
            TEXT,
            reasoning=REASONING,
            end_s=1.090,
            usage={"output_tokens": 100, "reasoning_tokens": 90},
        )
    )
    # the provider omits the reasoning count: the summary takes the stream's (90)
    quiet = row_of(trace(TEXT, reasoning=REASONING, end_s=1.090, usage={"output_tokens": 100}))
    plain = {**row_of(trace(TEXT, end_s=1.090, usage={"output_tokens": 10})), "provider": "q"}
    table = summarize(pd.DataFrame([reasoned, quiet, plain])).set_index("provider")
    assert table.loc["p (simulated)", "reasoning_p50_ms"] == pytest.approx(900.0)
    assert table.loc["p (simulated)", "reasoning_tokens_mean"] == pytest.approx(90.0)
    assert pd.isna(table.loc["q (simulated)", "reasoning_p50_ms"])
    only_plain = summarize(pd.DataFrame([plain]))
    assert "reasoning_p50_ms" not in only_plain and "reasoning_tokens_mean" not in only_plain


def test_litellm_rows_keep_the_usage_the_provider_sent() -> None:
    from types import SimpleNamespace

    from harness.providers.litellm import provider_usage

    sent = {"completion_tokens": 28}  # no reasoning count: litellm would count one itself
    rebuilt = {"completion_tokens": 28, "completion_tokens_details": {"reasoning_tokens": 20}}
    kept = SimpleNamespace(chunks=[SimpleNamespace(usage=None), SimpleNamespace(usage=sent)])
    assert provider_usage(kept, rebuilt) is sent
    # a provider that sent no usage: litellm's is all there is
    assert provider_usage(SimpleNamespace(chunks=[SimpleNamespace(usage=None)]), rebuilt) is rebuilt
    assert provider_usage(object(), rebuilt) is rebuilt


def test_one_token_per_chunk_is_inferred_from_usage_without_the_tokenizer() -> None:
    # Two chunks and 2 output tokens: a chunk with text carries at least one token,
    # so each carries exactly one, whatever the local tokenizer makes of the text
    # (o200k_base splits this long word into several pieces).
    chunks = [(0.100, "antidisestablishmentarianism"), (0.110, " again")]
    row = row_of(trace(chunks, end_s=0.110, usage={"output_tokens": 2}))
    assert row["chunk_tokens"] == [1, 1] and row["tokens_mismatch"] is False
    # Without usage the local count is all there is: more than one token for the word.
    assert row_of(trace(chunks, end_s=0.110))["chunk_tokens"][0] > 1
