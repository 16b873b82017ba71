"""harness.report (leaderboard, diff, gate, history) on synthetic rows with known properties.

Rows are built with the store's schema (through Arrow, so they have exactly the dtypes
``read_runs(...).to_pandas()`` returns) and summaries come from the real ``summarize``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from harness.report.diff import DEFAULT_THRESHOLDS, diff_runs
from harness.report.gate import adoption_gate, render_gate
from harness.report.history import history
from harness.report.leaderboard import (
    leaderboard,
    pareto_front,
    parse_weights,
    parse_where,
    tags_from_manifest,
)
from harness.store.parts import PartWriter, read_runs
from harness.store.schema import SCHEMA

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Rows as read_runs returns them: every schema column, the schema's types."""
    table = pa.Table.from_pylist(
        [{name: row.get(name) for name in SCHEMA.names} for row in rows], schema=SCHEMA
    )
    rows_frame: pd.DataFrame = table.to_pandas()
    return rows_frame


def latency_rows(
    provider: str,
    *,
    n: int = 200,
    ttft_ms: float | Sequence[float] = 100.0,
    sd_ms: float = 0.0,
    seed: int = 0,
    run_id: str = "run-a",
    suite: str = "lat",
    cost: float | None = 0.001,
    errors: int = 0,
    simulated: bool = False,
    start: datetime = T0,
    load_level: str | None = None,
) -> list[dict[str, Any]]:
    """``n`` requests of a latency suite; the first ``errors`` of them failed."""
    rng = np.random.default_rng(seed)
    ttfts = (
        np.asarray(ttft_ms, dtype=float)
        if not isinstance(ttft_ms, float | int)
        else rng.normal(ttft_ms, sd_ms, size=n)
    )
    out = []
    for i in range(n):
        ok = i >= errors
        ttft = float(ttfts[i]) / 1000
        out.append(
            {
                "run_id": run_id,
                "request_index": i,
                "suite": suite,
                "suite_kind": "latency",
                "case_id": f"c{i % 10}",
                "repeat": i // 10,
                "load_level": load_level,
                "warmup": False,
                "provider": provider,
                "model": f"m-{provider}",
                "simulated": simulated,
                "status": "ok" if ok else "error",
                "error_type": None if ok else "http_500",
                "started_at": start + timedelta(milliseconds=10 * i),
                "ttft_s": ttft if ok else None,
                "e2e_s": ttft + 0.2 if ok else None,
                "itl_s": 0.01 if ok else None,
                "output_tps": 100.0 if ok else None,
                "output_tokens": 20 if ok else None,
                "cost_usd": cost if ok else None,
            }
        )
    return out


def rag_rows(
    provider: str,
    correct: Sequence[bool],
    *,
    run_id: str = "run-a",
    suite: str = "rag",
    ttft_ms: float = 100.0,
    cost: float | None = 0.001,
    simulated: bool = False,
    repeats: int = 1,
    start: datetime = T0,
) -> list[dict[str, Any]]:
    """One rag_qa request per case (and repeat); case ``i`` is answered correctly iff
    ``correct[i]`` (the same for every repeat)."""
    out = []
    for r in range(repeats):
        for i, right in enumerate(correct):
            score = 1.0 if right else 0.0
            out.append(
                {
                    "run_id": run_id,
                    "request_index": r * len(correct) + i,
                    "suite": suite,
                    "suite_kind": "rag_qa",
                    "case_id": f"q{i}",
                    "repeat": r,
                    "warmup": False,
                    "provider": provider,
                    "model": f"m-{provider}",
                    "simulated": simulated,
                    "status": "ok",
                    "started_at": start + timedelta(milliseconds=10 * i),
                    "ttft_s": ttft_ms / 1000,
                    "e2e_s": ttft_ms / 1000 + 0.2,
                    "itl_s": 0.01,
                    "output_tps": 100.0,
                    "output_tokens": 20,
                    "cost_usd": cost,
                    "answerable": True,
                    "abstained": False,
                    "exact_match": score,
                    "f1": score,
                    "exact_match_abstain": score,
                    "f1_abstain": score,
                    "contains": score,
                }
            )
    return out


def outcomes(n: int, n_correct: int) -> list[bool]:
    return [i < n_correct for i in range(n)]


def row_for(table: pd.DataFrame, provider: str) -> pd.Series[Any]:
    return table[table["provider"] == provider].iloc[0]


# --------------------------------------------------------------------------- parsing


def test_parse_weights_accepts_partial_and_spaced_input() -> None:
    assert parse_weights("quality=0.5,latency=0.3,cost=0.2") == {
        "quality": 0.5,
        "latency": 0.3,
        "cost": 0.2,
    }
    assert parse_weights(" quality = 1 ") == {"quality": 1.0, "latency": 0.0, "cost": 0.0}
    assert parse_weights("latency=3,cost=1e0") == {"quality": 0.0, "latency": 3.0, "cost": 1.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("speed=1", "unknown weight dimension 'speed'"),
        ("quality=-0.1", "negative"),
        ("quality=lots", "not a number"),
        ("quality=nan", "not a finite number"),
        ("quality=inf", "not a finite number"),
        ("quality", "not NAME=VALUE"),
        ("quality=", "no value"),
        ("=1", "no name"),
        ("quality=1,quality=2", "given twice"),
        ("", "empty"),
        ("quality=0,cost=0", "all 0"),
        ("quality=1,,cost=1", "not NAME=VALUE"),
    ],
)
def test_parse_weights_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_weights(text)


def test_parse_where() -> None:
    assert parse_where("region=eu") == {"region": "eu"}
    assert parse_where("region = EU , open_weights=true") == {
        "region": "EU",
        "open_weights": "true",
    }
    assert parse_where("url=a=b") == {"url": "a=b"}  # split on the first '='
    for bad, message in (("region", "NAME=VALUE"), ("region=", "no value"), ("", "empty")):
        with pytest.raises(ValueError, match=message):
            parse_where(bad)
    with pytest.raises(ValueError, match="twice"):
        parse_where("a=1,a=2")


def test_tags_from_manifest() -> None:
    manifest = {
        "providers": {
            "a": {"model": "x", "tags": {"region": "eu"}},
            "b": {"model": "y", "tags": {}},
            "c": {"model": "z"},
        }
    }
    assert tags_from_manifest(manifest) == {"a": {"region": "eu"}, "b": {}, "c": {}}
    assert tags_from_manifest({}) == {}


# --------------------------------------------------------------------------- pareto


def test_pareto_front_dominated_and_ties() -> None:
    df = pd.DataFrame(
        {
            "provider": ["a", "b", "c", "d", "e"],
            "quality": [0.9, 0.8, 0.95, 0.9, 0.9],
            "ttft_p50_ms": [100.0, 200.0, 300.0, 100.0, 100.0],
            "usd_per_1k_requests": [1.0, 2.0, 1.0, 1.0, 1.5],
        }
    )
    front = pareto_front(df)
    # b is worse than a everywhere; d ties a exactly (neither dominates); c trades latency
    # for quality; e equals a but costs more, so a dominates it.
    assert front.tolist() == [True, False, True, True, False]
    assert front.attrs["ignored"] == []


def test_pareto_front_ignores_dimensions_with_nan() -> None:
    df = pd.DataFrame(
        {
            "quality": [0.9, 0.8],
            "ttft_p50_ms": [100.0, 200.0],
            "usd_per_1k_requests": [np.nan, 0.1],
        }
    )
    front = pareto_front(df)
    assert front.tolist() == [True, False]
    assert front.attrs["ignored"] == ["usd_per_1k_requests"]
    # No dimension left: nobody is better anywhere, so everyone is on the front.
    only_nan = pareto_front(df, maximize=[], minimize=["usd_per_1k_requests"])
    assert only_nan.tolist() == [True, True]
    with pytest.raises(KeyError, match="nope"):
        pareto_front(df, maximize=["nope"])


def test_pareto_front_single_dimension_keeps_only_the_best() -> None:
    df = pd.DataFrame({"quality": [0.5, 0.7, 0.7]})
    assert pareto_front(df, maximize=["quality"], minimize=[]).tolist() == [False, True, True]


# --------------------------------------------------------------------------- leaderboard


def board_rows() -> pd.DataFrame:
    """Four providers with exactly known aggregates (constant latency, fixed correctness).

    fast: q .6, ttft 50, $1/1k; good: q .9, ttft 200, $2/1k; cheap: q .5, ttft 100,
    $.5/1k; unpriced: q .7, ttft 80, no price. Each has a latency and a rag suite.
    """
    spec = {
        "fast": (6, 50.0, 0.001),
        "good": (9, 200.0, 0.002),
        "cheap": (5, 100.0, 0.0005),
        "unpriced": (7, 80.0, None),
    }
    rows: list[dict[str, Any]] = []
    for name, (n_correct, ttft, cost) in spec.items():
        rows += latency_rows(name, n=20, ttft_ms=ttft, cost=cost)
        rows += rag_rows(name, outcomes(10, n_correct), ttft_ms=ttft, cost=cost)
    return frame(rows)


def test_leaderboard_scores_ranks_and_missing_price() -> None:
    board = leaderboard(board_rows())
    assert board["provider"].tolist() == ["fast", "cheap", "good", "unpriced"]
    # Quality: 10 cases, good 9 vs fast 6 is 3 discordant cases all one way, exact
    # p = 2 * 0.5^3 = 0.25 (cheap: 4, p = 0.125): within noise of the best, so every
    # provider scores 1 on quality. Latency and cost are constant, so every gap there is
    # significant: best TTFT 50 / TTFT, best $0.5 / $.
    expected = {
        "fast": 0.5 * 1 + 0.3 * 1.0 + 0.2 * (0.5 / 1.0),  # 0.9
        "cheap": 0.5 * 1 + 0.3 * (50 / 100) + 0.2 * 1.0,  # 0.85
        "good": 0.5 * 1 + 0.3 * (50 / 200) + 0.2 * (0.5 / 2.0),  # 0.625
    }
    for name, score in expected.items():
        assert row_for(board, name)["score"] == pytest.approx(score)
    # fast vs cheap on the dimensions where they differ: 0.3 * (1 - 0.5) + 0.2 * (0.5 - 1)
    # = +0.05, so fast is above cheap; both are above good.
    assert board["rank"].tolist() == ["1", "2", "3", "-"]
    assert board["rank_min"].tolist() == [1, 2, 3, 4]
    assert board["rank_max"].tolist() == [1, 2, 3, 4]
    unpriced = row_for(board, "unpriced")
    assert np.isnan(unpriced["score"]) and unpriced["missing"] == "no price"
    assert not unpriced["pareto"]
    assert pd.isna(row_for(board, "fast")["missing"])
    # Quality is the rag suite's score only; latency the median over the two suites.
    assert row_for(board, "good")["quality"] == pytest.approx(0.9)
    assert row_for(board, "good")["ttft_p50_ms"] == pytest.approx(200.0)
    assert row_for(board, "good")["e2e_p95_ms"] == pytest.approx(400.0)
    assert row_for(board, "cheap")["usd_per_1k_requests"] == pytest.approx(0.5)
    assert board["pareto"].tolist() == [True, True, True, False]
    assert {"quality_ci_low", "quality_ci_high", "error_rate"} <= set(board.columns)
    low, high = row_for(board, "good")[["quality_ci_low", "quality_ci_high"]]
    assert low < 0.9 < high
    assert board.attrs["weights"] == pytest.approx({"quality": 0.5, "latency": 0.3, "cost": 0.2})


def test_leaderboard_marks_dominated_provider_off_the_front() -> None:
    rows = frame(
        latency_rows("fast", n=20, ttft_ms=50.0, cost=0.001)
        + rag_rows("fast", outcomes(10, 6), ttft_ms=50.0, cost=0.001)
        + latency_rows("slow", n=20, ttft_ms=150.0, cost=0.0015)
        + rag_rows("slow", outcomes(10, 5), ttft_ms=150.0, cost=0.0015)
    )
    board = leaderboard(rows)
    assert board.set_index("provider")["pareto"].to_dict() == {"fast": True, "slow": False}
    assert row_for(board, "fast")["score"] == pytest.approx(1.0)
    # Quality 0.6 vs 0.5 on one discordant case is a tie (1); 50/150 and 1/1.5 otherwise.
    assert row_for(board, "slow")["score"] == pytest.approx(0.5 + 0.3 / 3 + 0.2 * 2 / 3)
    assert board["rank"].tolist() == ["1", "2"]


def test_leaderboard_weights_change_the_order_and_are_normalised() -> None:
    summary = board_rows()
    by_quality = leaderboard(summary, weights={"quality": 1})
    # Quality alone: 9, 7, 6 and 5 correct of the same 10 cases are not told apart
    # (good vs cheap: 4 discordant cases, exact p = 2 * 0.5^4 = 0.125), so all four tie.
    assert by_quality["rank"].tolist() == ["1–4"] * 4
    assert by_quality["score"].tolist() == [1.0] * 4
    # Cost has weight 0, so a missing price no longer matters.
    assert by_quality["score"].notna().all()
    by_latency = leaderboard(summary, weights={"latency": 1})
    assert by_latency["provider"].tolist() == ["fast", "unpriced", "cheap", "good"]
    assert by_latency["score"].tolist() == pytest.approx([1.0, 50 / 80, 50 / 100, 50 / 200])
    scaled = leaderboard(summary, weights={"quality": 5, "latency": 3, "cost": 2})
    default = leaderboard(summary)
    assert scaled["score"].tolist() == pytest.approx(default["score"].tolist(), nan_ok=True)
    with pytest.raises(ValueError, match="unknown weight dimension"):
        leaderboard(summary, weights={"speed": 1})


def test_leaderboard_drops_a_dimension_no_provider_has() -> None:
    rows = frame(
        latency_rows("a", n=20, ttft_ms=50.0, cost=None)
        + rag_rows("a", outcomes(10, 5), ttft_ms=50.0, cost=None)
        + latency_rows("b", n=20, ttft_ms=100.0, cost=None)
        + rag_rows("b", outcomes(10, 9), ttft_ms=100.0, cost=None)
    )
    board = leaderboard(rows)
    assert board.attrs["weights"] == pytest.approx({"quality": 0.625, "latency": 0.375})
    assert any("cost dropped" in note for note in board.attrs["notes"])
    assert any("renormalised" in note for note in board.attrs["notes"])
    # Quality 0.5 vs 0.9: 4 discordant cases, p = 0.125, a tie; latency 50/100 for b.
    assert row_for(board, "a")["score"] == pytest.approx(0.625 + 0.375)
    assert row_for(board, "b")["score"] == pytest.approx(0.625 + 0.375 * 0.5)
    assert board["missing"].isna().all()


def test_leaderboard_without_quality_suites_scores_latency_and_cost() -> None:
    rows = frame(
        latency_rows("a", n=20, ttft_ms=50.0, cost=0.002)
        + latency_rows("b", n=20, ttft_ms=100.0, cost=0.001)
    )
    board = leaderboard(rows)
    assert "quality_ci_low" not in board.columns
    assert board["quality"].isna().all()
    assert board.attrs["weights"] == pytest.approx({"latency": 0.6, "cost": 0.4})
    assert row_for(board, "a")["score"] == pytest.approx(0.6 + 0.4 * 0.5)
    assert row_for(board, "b")["score"] == pytest.approx(0.6 * 0.5 + 0.4)
    # a leads by 0.6 * 0.5 - 0.4 * 0.5 = +0.1 on two significant differences.
    assert board["rank"].tolist() == ["1", "2"]


def test_leaderboard_single_or_equal_providers_score_one() -> None:
    one = leaderboard(frame(rag_rows("solo", outcomes(10, 3))))
    assert one["score"].tolist() == [1.0] and one["rank"].tolist() == ["1"]
    same = frame(rag_rows("x", outcomes(10, 3)) + rag_rows("y", outcomes(10, 3)))
    board = leaderboard(same)
    assert board["score"].tolist() == [1.0, 1.0]
    assert board["rank"].tolist() == ["1–2", "1–2"]  # a tie shares the range
    assert board["pareto"].all()


def test_leaderboard_error_rate_is_overall() -> None:
    rows = frame(
        latency_rows("a", n=100, errors=10, suite="s1")
        + latency_rows("a", n=300, errors=10, suite="s2")
    )
    board = leaderboard(rows)
    assert board["error_rate"].iloc[0] == pytest.approx(20 / 400)


def test_leaderboard_tags_and_where() -> None:
    rows = frame(
        latency_rows("fast", n=20, ttft_ms=50.0, simulated=True)
        + latency_rows("good", n=20, ttft_ms=200.0)
        + latency_rows("cheap", n=20, ttft_ms=100.0, cost=0.0001)
    )
    tags: dict[str, dict[str, Any]] = {
        "fast": {"region": "eu", "open_weights": True},
        "good": {"region": "US", "open_weights": False},
        "cheap": {"region": "EU"},
    }
    summary = rows
    board = leaderboard(summary, tags=tags)
    assert list(board.columns[-2:]) == ["region", "open_weights"]
    # Tags match the name without " (simulated)".
    assert row_for(board, "fast (simulated)")["region"] == "eu"
    assert pd.isna(row_for(board, "cheap")["open_weights"])

    eu = leaderboard(summary, tags=tags, where={"region": "Eu"})
    assert sorted(eu["provider"]) == ["cheap", "fast (simulated)"]
    assert row_for(eu, "fast (simulated)")["ttft_p50_ms"] == pytest.approx(50.0)
    # Scored among the providers kept (no quality: latency 0.6, cost 0.4): fast 50 ms at
    # $1/1k, cheap 100 ms at $0.1/1k -> fast 0.6 + 0.4 * 0.1, cheap 0.6 * 0.5 + 0.4.
    assert row_for(eu, "fast (simulated)")["score"] == pytest.approx(0.64)
    assert row_for(eu, "cheap")["score"] == pytest.approx(0.7)
    open_weights = leaderboard(summary, tags=tags, where={"open_weights": "TRUE"})
    assert open_weights["provider"].tolist() == ["fast (simulated)"]
    closed = leaderboard(summary, tags=tags, where={"open_weights": "false"})
    assert closed["provider"].tolist() == ["good"]
    both = leaderboard(summary, tags=tags, where={"region": "eu", "open_weights": "true"})
    assert both["provider"].tolist() == ["fast (simulated)"]
    nobody = leaderboard(summary, tags=tags, where={"region": "apac"})
    assert nobody.empty and "no provider matches" in nobody.attrs["notes"][0]
    with pytest.raises(ValueError, match="no provider has a tag 'regoin'"):
        leaderboard(summary, tags=tags, where={"regoin": "eu"})
    with pytest.raises(ValueError, match="no provider tags"):
        leaderboard(summary, where={"region": "eu"})


def test_leaderboard_of_an_empty_summary() -> None:
    board = leaderboard(pd.DataFrame())
    assert board.empty and "score" in board.columns


# --------------------------------------------------------------------------- diff


def metric_row(
    diff: pd.DataFrame, metric: str, provider: str = "p", suite: str | None = None
) -> pd.Series[Any]:
    hit = diff[(diff["metric"] == metric) & (diff["provider"] == provider)]
    if suite is not None:
        hit = hit[hit["suite"] == suite]
    assert len(hit) == 1, hit
    return hit.iloc[0]


def test_diff_flags_a_slower_run_as_a_significant_regression() -> None:
    a = frame(latency_rows("p", ttft_ms=100.0, sd_ms=5.0, seed=1, run_id="a"))
    b = frame(latency_rows("p", ttft_ms=150.0, sd_ms=5.0, seed=2, run_id="b"))
    diff = diff_runs(a, b)
    ttft = metric_row(diff, "ttft_p50_ms")
    assert ttft["significant"] and ttft["worse"] and ttft["regression"]
    assert ttft["change_rel"] == pytest.approx(0.5, abs=0.03)
    assert ttft["ci_low"] > 40 and ttft["ci_high"] < 60
    assert metric_row(diff, "ttft_p95_ms")["regression"]
    assert metric_row(diff, "e2e_p50_ms")["regression"]
    # ITL and cost did not change; the error rate is 0 in both.
    assert not metric_row(diff, "itl_p50_ms")["significant"]
    assert not metric_row(diff, "usd_per_1k_requests")["significant"]
    assert not metric_row(diff, "error_rate")["regression"]
    assert "exact_match_abstain" not in set(diff["metric"])  # latency suite: no scores
    # The other direction is an improvement: significant but not a regression.
    back = metric_row(diff_runs(b, a), "ttft_p50_ms")
    assert back["significant"] and not back["worse"] and not back["regression"]


def test_diff_same_distribution_rarely_alarms() -> None:
    regressions = 0
    significant_worse = 0
    for seed in range(20):
        a = frame(latency_rows("p", ttft_ms=100.0, sd_ms=5.0, seed=2 * seed, run_id="a"))
        b = frame(latency_rows("p", ttft_ms=100.0, sd_ms=5.0, seed=2 * seed + 1, run_id="b"))
        diff = diff_runs(a, b, seed=seed)
        regressions += int(diff["regression"].sum())
        ttft = metric_row(diff, "ttft_p50_ms")
        significant_worse += int(ttft["significant"] and ttft["worse"])
    assert regressions == 0  # with the default thresholds
    # Without a threshold: a 95 % two-sided test says "worse" ~2.5 % of the time.
    assert significant_worse <= 2


def test_diff_threshold_separates_significant_from_important() -> None:
    a = frame(latency_rows("p", n=400, ttft_ms=100.0, sd_ms=2.0, seed=1, run_id="a"))
    b = frame(latency_rows("p", n=400, ttft_ms=108.0, sd_ms=2.0, seed=2, run_id="b"))
    ttft = metric_row(diff_runs(a, b), "ttft_p50_ms")
    assert ttft["significant"] and ttft["worse"] and not ttft["regression"]
    assert ttft["threshold"] == DEFAULT_THRESHOLDS["ttft_p50_ms"]
    strict = metric_row(diff_runs(a, b, {"ttft_p50_ms": 0.02}), "ttft_p50_ms")
    assert strict["regression"] and strict["threshold"] == 0.02
    with pytest.raises(ValueError, match="unknown threshold metric 'ttft'"):
        diff_runs(a, b, {"ttft": 0.1})
    with pytest.raises(ValueError, match=">= 0"):
        diff_runs(a, b, {"ttft_p50_ms": -0.1})


def test_diff_ignores_warmup_and_failed_requests_for_latency() -> None:
    a = frame(latency_rows("p", ttft_ms=100.0, sd_ms=5.0, seed=1, run_id="a"))
    b_rows = latency_rows("p", ttft_ms=100.0, sd_ms=5.0, seed=2, run_id="b")
    warm = latency_rows("p", n=50, ttft_ms=5000.0, seed=3, run_id="b")
    for row in warm:
        row["warmup"] = True
    diff = diff_runs(a, frame(b_rows + warm))
    assert not diff["regression"].any()
    assert metric_row(diff, "ttft_p50_ms")["n_b"] == 200


def test_diff_error_rate_regression() -> None:
    a = frame(latency_rows("p", n=300, errors=0, run_id="a"))
    b = frame(latency_rows("p", n=300, errors=30, run_id="b"))
    errors = metric_row(diff_runs(a, b), "error_rate")
    assert errors["a"] == 0 and errors["b"] == pytest.approx(0.1)
    assert errors["test"] == "Fisher exact" and errors["p_value"] < 1e-6
    assert errors["regression"]
    assert errors["ci_low"] > 0.05
    # One error more is noise, not a regression.
    one = frame(latency_rows("p", n=300, errors=1, run_id="b"))
    assert not metric_row(diff_runs(a, one), "error_rate")["significant"]


def test_diff_quality_is_paired_on_cases() -> None:
    rng = np.random.default_rng(5)
    base = rng.random(200) < 0.9
    worse = base & (rng.random(200) < 0.7)  # loses ~30 % of what A got right
    a = frame(rag_rows("p", base.tolist(), run_id="a"))
    b = frame(rag_rows("p", worse.tolist(), run_id="b"))
    quality = metric_row(diff_runs(a, b), "exact_match_abstain")
    assert quality["test"] == "McNemar + paired bootstrap"
    assert quality["n_a"] == 200 and quality["significant"] and quality["regression"]
    assert quality["change"] == pytest.approx(worse.mean() - base.mean())
    same = metric_row(
        diff_runs(a, frame(rag_rows("p", base.tolist(), run_id="b"))), "exact_match_abstain"
    )
    assert same["change"] == 0 and not same["significant"]


def test_diff_cost_and_missing_prices() -> None:
    a = frame(latency_rows("p", cost=0.001, run_id="a"))
    b = frame(latency_rows("p", cost=0.0015, run_id="b"))
    cost = metric_row(diff_runs(a, b), "usd_per_1k_requests")
    assert cost["a"] == pytest.approx(1.0) and cost["b"] == pytest.approx(1.5)
    assert cost["regression"]
    unpriced = metric_row(
        diff_runs(a, frame(latency_rows("p", cost=None, run_id="b"))), "usd_per_1k_requests"
    )
    assert unpriced["test"] == "no price" and np.isnan(unpriced["b"])
    assert not unpriced["significant"] and not unpriced["regression"]


def test_diff_groups_and_notes() -> None:
    a = frame(
        latency_rows("p", run_id="a", load_level="c1")
        + latency_rows("p", run_id="a", load_level="c8")
        + latency_rows("gone", run_id="a")
    )
    b = frame(latency_rows("p", run_id="b", load_level="c1", simulated=True))
    diff = diff_runs(a, b)
    # A simulated "p" is not the same provider as a real "p".
    assert diff.empty
    assert any("only in B" in note and "p (simulated)" in note for note in diff.attrs["notes"])
    b = frame(latency_rows("p", run_id="b", load_level="c8"))
    diff = diff_runs(a, b)
    assert set(diff["load_level"]) == {"c8"} and set(diff["provider"]) == {"p"}
    assert any("gone" in note for note in diff.attrs["notes"])


def test_diff_is_deterministic() -> None:
    a = frame(latency_rows("p", ttft_ms=100.0, sd_ms=5.0, seed=1, run_id="a"))
    b = frame(latency_rows("p", ttft_ms=103.0, sd_ms=5.0, seed=2, run_id="b"))
    pd.testing.assert_frame_equal(diff_runs(a, b), diff_runs(a, b))


# --------------------------------------------------------------------------- history


def test_history_orders_runs_by_start_time() -> None:
    runs = [("r-late", 3, 300.0), ("r-early", 1, 100.0), ("r-mid", 2, 200.0)]
    rows: list[dict[str, Any]] = []
    for run_id, day, ttft in runs:
        start = T0 + timedelta(days=day)
        rows += latency_rows("p", n=20, ttft_ms=ttft, run_id=run_id, start=start)
        rows += latency_rows("q", n=20, ttft_ms=ttft / 2, run_id=run_id, start=start)
        rows += rag_rows("p", outcomes(10, day), run_id=run_id, start=start)
    data = frame(rows)
    series = history(data, "ttft_p50_ms", "p")
    assert list(series.columns) == [
        "run_id",
        "started_at",
        "provider",
        "suite",
        "load_level",
        "value",
    ]
    lat = series[series["suite"] == "lat"]
    assert lat["run_id"].tolist() == ["r-early", "r-mid", "r-late"]
    assert lat["value"].tolist() == pytest.approx([100.0, 200.0, 300.0])
    assert set(series["provider"]) == {"p"}
    # A quality metric: only the rag suite has it, so the latency suite is left out.
    quality = history(data, "exact_match_abstain", None)
    assert set(quality["suite"]) == {"rag"}
    assert quality["value"].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert len(history(data, "ttft_p50_ms", None)) == 9
    with pytest.raises(ValueError, match="unknown metric 'ttft_median'"):
        history(data, "ttft_median", None)
    with pytest.raises(ValueError, match="unknown provider 'nobody'"):
        history(data, "ttft_p50_ms", "nobody")


def test_history_matches_simulated_labels() -> None:
    data = frame(latency_rows("sim", n=10, simulated=True, run_id="r1"))
    series = history(data, "requests", "sim (simulated)")
    assert series["provider"].tolist() == ["sim (simulated)"]
    assert series["value"].tolist() == [10.0]


def test_history_uses_each_runs_slos() -> None:
    data = frame(
        latency_rows("p", n=10, ttft_ms=100.0, run_id="r1")
        + latency_rows("p", n=10, ttft_ms=300.0, run_id="r2", start=T0 + timedelta(days=1))
    )
    with pytest.raises(ValueError, match="unknown metric 'goodput'"):
        history(data, "goodput")
    slo = {"lat": {"ttft_ms": 200.0}}
    series = history(data, "goodput", slos={"r1": slo, "r2": slo})
    assert series["value"].tolist() == [1.0, 0.0]


# --------------------------------------------------------------------------- adoption gate


def gate_rows(base: Sequence[bool], cand: Sequence[bool], **candidate: Any) -> pd.DataFrame:
    return frame(rag_rows("base", base) + rag_rows("cand", cand, **candidate))


def test_gate_adopts_a_clearly_non_inferior_candidate() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(1000) < 0.8
    cand = base.copy()
    flip = rng.choice(1000, size=10, replace=False)  # 10 disagreements, both directions
    cand[flip] = ~cand[flip]
    result = adoption_gate(gate_rows(base.tolist(), cand.tolist()), "base", "cand")
    assert result.decision == "adopt" and result.exit_code == 0
    assert [c.name for c in result.checks] == ["quality (non-inferiority)"]
    assert result.checks[0].passed
    assert "95% confidence" in result.confidence and "1000 paired cases" in result.confidence
    text = render_gate(result)
    assert text.startswith("ADOPT: cand (candidate) vs base (baseline)")
    assert "PASS" in text and "not checked: latency" in text


def test_gate_rejects_a_clearly_worse_candidate() -> None:
    rng = np.random.default_rng(1)
    base = rng.random(500) < 0.8
    cand = base & (rng.random(500) < 0.85)
    result = adoption_gate(gate_rows(base.tolist(), cand.tolist()), "base", "cand")
    assert result.decision == "do not adopt" and result.exit_code == 1
    check = result.checks[0]
    assert not check.passed and "< -0.020 allowed" in check.detail
    assert "non-inferiority is not shown" in result.confidence
    assert render_gate(result).startswith("DO NOT ADOPT")


def test_gate_needs_enough_cases_even_when_all_agree() -> None:
    # 20 identical answers cannot show that the candidate loses at most 2 points.
    same = outcomes(20, 15)
    small = adoption_gate(gate_rows(same, same), "base", "cand")
    assert small.decision == "do not adopt"
    big = adoption_gate(gate_rows(outcomes(2000, 1500), outcomes(2000, 1500)), "base", "cand")
    assert big.decision == "adopt"
    # A looser margin is met by the small sample.
    loose = adoption_gate(gate_rows(same, same), "base", "cand", max_quality_drop=0.2)
    assert loose.decision == "adopt"


def test_gate_averages_repeats_per_case() -> None:
    same = outcomes(40, 30)
    one = adoption_gate(frame(rag_rows("base", same) + rag_rows("cand", same)), "base", "cand")
    five = adoption_gate(
        frame(rag_rows("base", same, repeats=5) + rag_rows("cand", same, repeats=5)),
        "base",
        "cand",
    )
    # Repeating the same 40 questions is not 200 independent cases.
    assert "40 paired cases" in five.checks[0].detail
    assert one.checks[0].detail == five.checks[0].detail


def test_gate_without_quality_data_fails_with_a_reason() -> None:
    rows = frame(latency_rows("base", n=20) + latency_rows("cand", n=20))
    # Not asked for, quality is left out of a latency-only run (and said so) ...
    default = adoption_gate(rows, "base", "cand", max_p95_latency_ms=1000)
    assert [c.name for c in default.checks] == ["latency (E2E p95)"]
    assert default.decision == "adopt"
    assert "quality (no exact_match_abstain scores: no rag_qa suite)" in default.not_checked
    # ... and a quality check that is asked for fails with the reason.
    result = adoption_gate(
        rows, "base", "cand", max_p95_latency_ms=1000, checks=["quality", "latency"]
    )
    quality, latency = result.checks
    assert not quality.passed and "no exact_match_abstain scores" in quality.detail
    assert latency.passed
    assert result.decision == "do not adopt"
    assert "No confidence statement" in result.confidence


def test_gate_latency_and_cost_limits() -> None:
    same = outcomes(3000, 2400)
    rows = gate_rows(same, same, ttft_ms=100.0, cost=0.002)
    ok = adoption_gate(rows, "base", "cand", max_p95_latency_ms=400, max_usd_per_1k=3)
    assert ok.decision == "adopt", render_gate(ok)
    assert ok.not_checked == []
    slow = adoption_gate(rows, "base", "cand", max_p95_latency_ms=250)
    assert slow.decision == "do not adopt"
    assert "E2E p95 300 ms" in slow.checks[1].detail and "> limit 250 ms" in slow.checks[1].detail
    dear = adoption_gate(rows, "base", "cand", max_usd_per_1k=1)
    assert not dear.checks[1].passed and "$2 per 1k" in dear.checks[1].detail
    unpriced = adoption_gate(gate_rows(same, same, cost=None), "base", "cand", max_usd_per_1k=10)
    assert not unpriced.checks[1].passed and "no price" in unpriced.checks[1].detail
    assert "cost" in render_gate(unpriced).split("Why not:")[1]


def test_gate_input_errors() -> None:
    rows = gate_rows(outcomes(10, 5), outcomes(10, 5), simulated=True)
    # The candidate is simulated: its plain name is accepted too.
    result = adoption_gate(rows, "base", "cand", max_quality_drop=0.5)
    assert result.candidate == "cand (simulated)"
    with pytest.raises(ValueError, match="unknown candidate provider 'nobody'"):
        adoption_gate(rows, "base", "nobody")
    with pytest.raises(ValueError, match="same provider"):
        adoption_gate(rows, "base", "base")
    with pytest.raises(ValueError, match="unknown suite 'x'"):
        adoption_gate(rows, "base", "cand", suite="x")
    with pytest.raises(ValueError, match="confidence"):
        adoption_gate(rows, "base", "cand", confidence=0.4)


def test_gate_suite_restricts_every_check() -> None:
    good = outcomes(3000, 2400)
    bad = outcomes(3000, 1800)
    rows = frame(
        rag_rows("base", good, suite="a")
        + rag_rows("cand", good, suite="a")
        + rag_rows("base", good, suite="b")
        + rag_rows("cand", bad, suite="b")
    )
    assert adoption_gate(rows, "base", "cand").decision == "do not adopt"
    assert adoption_gate(rows, "base", "cand", suite="a").decision == "adopt"


# --------------------------------------------------------------------------- store round trip


def test_functions_accept_rows_read_back_from_the_store(tmp_path: Path) -> None:
    # run-b is written first but started later: history must follow the start time.
    for run_id, ttft, seed in (("run-b", 150.0, 2), ("run-a", 100.0, 1)):
        writer = PartWriter(tmp_path / run_id, run_id, flush_rows=100)
        start = T0 + timedelta(hours=seed)
        rows = latency_rows("p", ttft_ms=ttft, sd_ms=5.0, seed=seed, run_id=run_id, start=start)
        rows += rag_rows("p", outcomes(50, 40), run_id=run_id, start=start)
        rows += rag_rows("q", outcomes(50, 38), run_id=run_id, cost=None, start=start)
        for row in rows:
            writer.add(row)
        writer.flush()
    a = read_runs(tmp_path, ["run-a"]).to_pandas()
    b = read_runs(tmp_path, ["run-b"]).to_pandas()
    assert metric_row(diff_runs(a, b), "ttft_p50_ms", suite="lat")["regression"]
    board = leaderboard(b)
    assert board["provider"].tolist() == ["p", "q"] and row_for(board, "q")["missing"] == "no price"
    both = read_runs(tmp_path).to_pandas()
    series = history(both, "ttft_p50_ms", "p")
    assert series[series["suite"] == "lat"]["run_id"].tolist() == ["run-a", "run-b"]
    assert adoption_gate(b, "p", "q").decision == "do not adopt"


def test_latency_changes_within_the_clock_error_are_not_regressions() -> None:
    # 20 ms → 23 ms is +15 % and significant, but 3 ms is within a client's clock error.
    a = frame(latency_rows("p", n=400, ttft_ms=20.0, sd_ms=0.5, seed=1, run_id="a"))
    b = frame(latency_rows("p", n=400, ttft_ms=23.0, sd_ms=0.5, seed=2, run_id="b"))
    ttft = metric_row(diff_runs(a, b), "ttft_p50_ms")
    assert ttft["significant"] and ttft["worse"] and not ttft["regression"]
