"""The leaderboard ranks with the uncertainty; diff's noise floors are per metric.

Rows come from the builders of test_decide (the store's schema and dtypes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from harness.report.compare import NOISE_FLOORS
from harness.report.diff import diff_runs
from harness.report.leaderboard import leaderboard
from harness.report.summary import summarize

from .test_decide import frame, latency_rows, metric_row, outcomes, rag_rows, row_for

# --------------------------------------------------------------------------- leaderboard


def test_a_five_times_slower_provider_does_not_win_on_a_non_significant_quality_gap() -> None:
    # The quickstart's trap: "slow" answers one case more of 10 (exact p = 2 * 0.5 = 1.0
    # for 1 discordant case) at 5× the TTFT. Under min–max it won on quality; here the
    # quality gap is a tie and only the real difference, latency, orders them.
    rows = frame(
        latency_rows("fast", n=40, ttft_ms=100.0)
        + rag_rows("fast", outcomes(10, 7), ttft_ms=100.0)
        + latency_rows("slow", n=40, ttft_ms=500.0)
        + rag_rows("slow", outcomes(10, 8), ttft_ms=500.0)
    )
    board = leaderboard(rows)
    assert board["provider"].tolist() == ["fast", "slow"]
    assert board["rank"].tolist() == ["1", "2"]
    # fast: 0.5 * 1 (tie) + 0.3 * 1 + 0.2 * 1 (same price) = 1.0;
    # slow: 0.5 * 1 + 0.3 * (100 / 500) + 0.2 * 1 = 0.76.
    assert row_for(board, "fast")["score"] == pytest.approx(1.0)
    assert row_for(board, "slow")["score"] == pytest.approx(0.76)
    # On quality alone they cannot be told apart.
    by_quality = leaderboard(rows, weights={"quality": 1})
    assert by_quality["rank"].tolist() == ["1–2", "1–2"]


def test_noise_is_a_tie_not_a_rank() -> None:
    # Quality 0.80 vs 0.79 on 100 cases (one discordant case) and TTFT 100 vs 101 ms
    # (sd 5 ms: inside the interval, and below the 5 ms floor). Min–max made that a
    # 1.0 vs 0.2 score; here both dimensions are ties, so both score 1 and share 1–2.
    rows = frame(
        latency_rows("a", n=200, ttft_ms=100.0, sd_ms=5.0, seed=1)
        + rag_rows("a", outcomes(100, 80), ttft_ms=100.0)
        + latency_rows("b", n=200, ttft_ms=101.0, sd_ms=5.0, seed=2)
        + rag_rows("b", outcomes(100, 79), ttft_ms=101.0)
    )
    board = leaderboard(rows)
    assert board["rank"].tolist() == ["1–2", "1–2"]
    assert board["rank_min"].tolist() == [1, 1] and board["rank_max"].tolist() == [2, 2]
    assert board["score"].tolist() == pytest.approx([1.0, 1.0])


def test_a_significant_quality_gap_ranks_and_scores_relative_to_the_best() -> None:
    # 90 vs 60 correct of the same 100 cases: 30 discordant, exact p = 2 * 0.5^30.
    rows = frame(rag_rows("good", outcomes(100, 90)) + rag_rows("poor", outcomes(100, 60)))
    board = leaderboard(rows)
    assert board["rank"].tolist() == ["1", "2"]
    # poor: 0.5 * (0.6 / 0.9) + 0.3 * 1 + 0.2 * 1 (same latency and price).
    assert row_for(board, "poor")["score"] == pytest.approx(0.5 * 0.6 / 0.9 + 0.5)
    low, high = row_for(board, "poor")[["quality_ci_low", "quality_ci_high"]]
    assert low < 0.6 < high


def test_three_providers_share_overlapping_ranges() -> None:
    # Quality only, 40 cases: a 30, b 26, c 20 correct, nested (b's right cases are a's).
    # a vs b: 4 discordant (p = 0.125), b vs c: 6 (p = 2 * 0.5^6 = 0.031, and the
    # bootstrap agrees), a vs c: 10 (p = 0.002). So a > c and b > c, a ~ b.
    rows = frame(
        rag_rows("a", outcomes(40, 30))
        + rag_rows("b", outcomes(40, 26))
        + rag_rows("c", outcomes(40, 20))
    )
    board = leaderboard(rows, weights={"quality": 1})
    assert dict(zip(board["provider"], board["rank"], strict=True)) == {
        "a": "1–2",
        "b": "1–2",
        "c": "3",
    }
    # c is significantly below the best: 20 / 30.
    assert row_for(board, "c")["score"] == pytest.approx(20 / 30)


def test_latency_never_pools_load_levels() -> None:
    # a ran c=4 (100 ms) and c=32 (1000 ms); b only c=4 (120 ms). The lowest shared level
    # is c=4 (numerically, not "c=32" < "c=4" as text): a 100, b 120 — not a's median
    # of the two levels, 550.
    rows = frame(
        latency_rows("a", n=20, ttft_ms=100.0, load_level="c=4")
        + latency_rows("a", n=20, ttft_ms=1000.0, load_level="c=32")
        + latency_rows("b", n=20, ttft_ms=120.0, load_level="c=4")
    )
    board = leaderboard(rows)
    assert row_for(board, "a")["ttft_p50_ms"] == pytest.approx(100.0)
    assert row_for(board, "b")["ttft_p50_ms"] == pytest.approx(120.0)
    assert any("lat c=4" in note for note in board.attrs["notes"])
    # Both ran both levels: still c=4, the lowest.
    both = frame(
        latency_rows("a", n=20, ttft_ms=100.0, load_level="c=4")
        + latency_rows("a", n=20, ttft_ms=1000.0, load_level="c=32")
        + latency_rows("b", n=20, ttft_ms=120.0, load_level="c=4")
        + latency_rows("b", n=20, ttft_ms=300.0, load_level="c=32")
    )
    assert leaderboard(both)["ttft_p50_ms"].tolist() == pytest.approx([100.0, 120.0])
    # b ran only c=32: that is the level they share, for both.
    high = frame(
        latency_rows("a", n=20, ttft_ms=100.0, load_level="c=4")
        + latency_rows("a", n=20, ttft_ms=1000.0, load_level="c=32")
        + latency_rows("b", n=20, ttft_ms=300.0, load_level="c=32")
    )
    assert leaderboard(high).set_index("provider")["ttft_p50_ms"].to_dict() == pytest.approx(
        {"a": 1000.0, "b": 300.0}
    )


def test_repeats_do_not_sharpen_the_ranking() -> None:
    # 10 cases, 3 discordant (p = 0.25), repeated 5 times: still a tie on quality.
    rows = frame(
        rag_rows("a", outcomes(10, 6), repeats=5) + rag_rows("b", outcomes(10, 3), repeats=5)
    )
    board = leaderboard(rows, weights={"quality": 1})
    assert board["rank"].tolist() == ["1–2", "1–2"]


def test_leaderboard_wants_rows_not_a_summary() -> None:
    rows = frame(rag_rows("a", outcomes(10, 6)))
    with pytest.raises(ValueError, match="per-request rows"):
        leaderboard(summarize(rows))


# --------------------------------------------------------------------------- diff


def with_itl(rows: list[dict[str, Any]], itl_ms: float, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    for row in rows:
        row["itl_s"] = float(rng.normal(itl_ms, 0.2)) / 1000
    return rows


def test_an_itl_regression_from_4_to_9_ms_is_flagged() -> None:
    # +5 ms is +125 %: under the old shared 5 ms floor it was "within the clock's error".
    a = frame(with_itl(latency_rows("p", run_id="a"), 4.0, seed=1))
    b = frame(with_itl(latency_rows("p", run_id="b"), 9.0, seed=2))
    itl = metric_row(diff_runs(a, b), "itl_p50_ms")
    assert itl["change"] == pytest.approx(5.0, abs=0.1)
    assert itl["change_rel"] == pytest.approx(1.25, abs=0.05)
    assert itl["significant"] and itl["regression"]
    # 4 -> 5 ms is significant and +25 %, but within ITL's 2 ms floor.
    c = frame(with_itl(latency_rows("p", run_id="c"), 5.0, seed=3))
    small = metric_row(diff_runs(a, c), "itl_p50_ms")
    assert small["significant"] and small["worse"] and not small["regression"]
    assert NOISE_FLOORS["itl_p50_ms"] == 2.0 and NOISE_FLOORS["ttft_p50_ms"] == 5.0


def test_diff_pairs_quality_per_case_not_per_repeat() -> None:
    # B loses 3 of 10 cases, every repeat the same way: p = 2 * 0.5^3 = 0.25 on 10 cases,
    # not 2 * 0.5^15 on 50 (case, repeat) pairs.
    a = frame(rag_rows("p", outcomes(10, 8), run_id="a", repeats=5))
    b = frame(rag_rows("p", outcomes(10, 5), run_id="b", repeats=5))
    quality = metric_row(diff_runs(a, b), "exact_match_abstain")
    assert quality["n_a"] == 10 and quality["n_b"] == 10
    assert quality["p_value"] == 0.25
    assert quality["change"] == pytest.approx(-0.3)
    assert not quality["significant"] and not quality["regression"]
