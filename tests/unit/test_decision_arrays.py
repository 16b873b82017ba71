"""The decisions' numpy layer (harness.report.compare.RowArrays): groups are the rows'
positions, whatever the frame's index, and hold what ``groupby`` would."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.report.compare import RowArrays, measured_rows
from harness.report.diff import diff_runs
from harness.report.leaderboard import leaderboard


def _rows(statuses: list[str], ttfts: list[float], index_from: int) -> pd.DataFrame:
    n = len(statuses)
    return pd.DataFrame(
        {
            "suite": ["lat"] * n,
            "load_level": [None] * n,
            "provider": ["p"] * n,
            "simulated": [True] * n,
            "warmup": [False] * n,
            "status": statuses,
            "from_cache": [False] * n,
            "case_id": [f"c{i}" for i in range(n)],
            "ttft_s": ttfts,
            "e2e_s": ttfts,
            "itl_s": [math.nan] * n,
            "cost_usd": [0.001] * n,
        },
        index=range(index_from, index_from + n),
    )


def test_a_frame_whose_index_does_not_start_at_0_keeps_its_labels() -> None:
    # As one run's rows cut out of several runs' frame: index 600, 601, ...
    measured = measured_rows(_rows(["ok", "ok"], [0.1, 0.2], index_from=600))
    assert measured["label"].tolist() == ["p (simulated)", "p (simulated)"]
    assert measured["load_level"].tolist() == ["-", "-"]


def test_diff_of_runs_cut_from_one_frame() -> None:
    a = _rows(["ok", "ok", "ok", "error"], [0.1, 0.2, 0.3, math.nan], index_from=0)
    b = _rows(["ok", "error", "error", "error"], [0.4, math.nan, math.nan, math.nan], 4)
    table = diff_runs(a, b)
    assert table.attrs["notes"] == []  # the one group is in both runs
    errors = table[table["metric"] == "error_rate"].iloc[0]
    # 1 error in 4 requests against 3 in 4.
    assert (errors["a"], errors["b"], errors["n_a"], errors["n_b"]) == (0.25, 0.75, 4, 4)
    assert errors["provider"] == "p (simulated)" and errors["load_level"] == "-"
    ttft = table[table["metric"] == "ttft_p50_ms"].iloc[0]
    # Medians of 100, 200, 300 ms and of 400 ms alone (too few values to test).
    assert (ttft["a"], ttft["b"], ttft["test"]) == (200.0, 400.0, "too few values")


def test_groups_are_positions_in_frame_order() -> None:
    frame = pd.DataFrame(
        {"suite": ["x", "y", "x", None, "y"], "label": ["a", "a", "b", "a", "a"]},
        index=[10, 11, 12, 13, 14],
    )
    groups = RowArrays(frame).groups(["suite", "label"])
    # groupby drops the row without a suite; positions, not index labels.
    assert {k: v.tolist() for k, v in groups.items()} == {
        ("x", "a"): [0],
        ("y", "a"): [1, 4],
        ("x", "b"): [2],
    }
    within = RowArrays(frame).groups(["label"], np.array([1, 2, 4]))
    assert {k: v.tolist() for k, v in within.items()} == {("a",): [1, 4], ("b",): [2]}


def test_leaderboard_does_not_depend_on_the_index() -> None:
    rows = pd.concat(
        [
            _rows(["ok"] * 4, [0.1, 0.2, 0.3, 0.4], 0),
            _rows(["ok"] * 4, [0.5, 0.6, 0.7, 0.8], 4).assign(provider="q"),
        ]
    )
    shifted = rows.set_axis(range(1000, 1008))
    board, moved = leaderboard(rows), leaderboard(shifted)
    pd.testing.assert_frame_equal(board, moved)
    # TTFT p50: median of 100..400 ms = 250 ms for p, of 500..800 ms = 650 ms for q.
    assert dict(zip(board["provider"], board["ttft_p50_ms"], strict=True)) == {
        "p (simulated)": 250.0,
        "q (simulated)": 650.0,
    }
