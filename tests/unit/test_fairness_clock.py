"""The fairness note names each path's clock, and Bedrock's unmeasured bound."""

from __future__ import annotations

import pandas as pd

from harness.report.fairness import CLIENT_TTFT_ERROR_MS, fairness_note


def frame(*rows: tuple[str, str, str | None, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"provider": p, "transport": t, "clock": c, "model": m} for p, t, c, m in rows]
    )


def test_each_path_is_quoted_with_its_clock() -> None:
    note = fairness_note(
        frame(
            ("gpt", "direct", "socket", "openai/gpt-4o-mini"),
            ("claude", "litellm", "socket", "anthropic/claude"),
            ("cohere", "litellm", "call", "cohere_chat/command"),
        )
    )
    assert note is not None
    socket_p50, socket_p99 = CLIENT_TTFT_ERROR_MS["litellm/socket"]
    call_p50, call_p99 = CLIENT_TTFT_ERROR_MS["litellm"]
    assert (
        f"claude by litellm on the socket clock (p50 {socket_p50:g} / p99 {socket_p99:g} ms)"
        in note
    )
    assert f"cohere by litellm on the call clock (p50 {call_p50:g} / p99 {call_p99:g} ms)" in note
    assert "gpt by direct on the socket clock (p50 0.1 / p99 4.3 ms)" in note


def test_rows_before_the_clock_column_were_on_the_call_clock() -> None:
    rows = pd.DataFrame(
        [
            {"provider": "gpt", "transport": "direct"},
            {"provider": "claude", "transport": "litellm"},
        ]
    )
    note = fairness_note(rows)
    assert note is not None
    assert "claude by litellm (p50 54 / p99 145 ms)" in note  # the call clock's bound


def test_bedrock_says_why_it_has_no_bound() -> None:
    note = fairness_note(
        frame(
            ("gpt", "direct", "socket", "openai/gpt-4o-mini"),
            ("nova", "litellm", "socket", "bedrock/amazon.nova-lite-v1:0"),
        )
    )
    assert note is not None
    assert "nova by litellm on the socket clock (bound not measured: the simulator does not" in note


def test_rows_that_name_no_path_are_left_out() -> None:
    rows = frame(
        ("gpt", "direct", "socket", "openai/x"),
        ("claude", "litellm", "socket", "anthropic/x"),
    )
    rows.loc[len(rows)] = {"provider": "gone", "transport": None, "clock": None, "model": None}
    note = fairness_note(rows)
    assert note is not None and "gone" not in note
