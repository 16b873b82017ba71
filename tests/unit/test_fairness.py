"""The fairness note: a run whose providers were timed by clients of different error says so."""

from __future__ import annotations

import pandas as pd

from harness.report.fairness import CLIENT_TTFT_ERROR_MS, fairness_note


def rows(*pairs: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame([{"provider": p, "transport": t, "ttft_s": 0.1} for p, t in pairs])


def test_one_kind_of_client_needs_no_note() -> None:
    assert fairness_note(rows(("a", "direct"), ("b", "anthropic"), ("a", "direct"))) is None
    assert fairness_note(rows(("a", "litellm"), ("b", "litellm"))) is None
    assert fairness_note(pd.DataFrame()) is None
    assert fairness_note(pd.DataFrame([{"provider": "a"}])) is None  # rows before the column


def test_mixed_clients_are_named_with_their_bounds() -> None:
    note = fairness_note(rows(("gpt", "direct"), ("claude", "litellm"), ("gpt", "direct")))
    assert note is not None
    p50, p99 = CLIENT_TTFT_ERROR_MS["litellm"]
    assert f"claude by litellm (p50 {p50:g} / p99 {p99:g} ms)" in note
    assert "gpt by direct" in note
    assert note.index("claude") < note.index("gpt")  # providers in name order


def test_the_bounds_rank_litellm_last() -> None:
    # The measured constants: litellm's client error is the largest at p99.
    lean = max(CLIENT_TTFT_ERROR_MS["direct"][1], CLIENT_TTFT_ERROR_MS["anthropic"][1])
    assert CLIENT_TTFT_ERROR_MS["litellm"][1] > lean > 0
