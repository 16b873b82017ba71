"""Reports at scale give the numbers they gave before: the summary's groups built from row
positions equal pandas' groupby frames, and history's one-pass metrics equal each run's
own summary, on real runs (two runs against the simulator, with warm-ups and an error)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.report.groups import split
from harness.report.history import history
from harness.report.history_fast import FAST_METRICS, fast_columns
from harness.report.summary import (
    SUMMARIZE_COLUMNS,
    SUMMARY_COLUMNS,
    load_summary,
    read_frame,
    summarize,
)
from harness.store.parts import list_runs

from ..conftest import TEST_DATA

SAMPLE = TEST_DATA / "squad-v2" / "sample-200.jsonl"


def test_split_gives_the_frames_groupby_gives() -> None:
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    rows = pd.DataFrame(
        {
            "suite": ["a", "a", "b", None, "b", "a", "b"],
            "provider": ["p", "q", "p", "p", "p", "p", "q"],
            "score": [np.nan, np.nan, 1.0, 2.0, np.nan, np.nan, 0.5],  # a/p has none
            "text": ["x", None, None, "y", None, "z", "w"],  # b/p has none
            "flag": [True, None, False, None, None, True, None],  # object, None cells
            "n": [1, 2, 3, 4, 5, 6, 7],
            "at": pd.date_range(t0, periods=7, freq="s"),
        },
        index=[10, 11, 12, 13, 14, 15, 16],
    )
    keep = np.array([True, True, True, True, True, False, True])
    mine = list(split(rows, ["suite", "provider"], where=keep))
    theirs = list(rows[keep].groupby(["suite", "provider"], sort=False))
    # The row with no suite is in no group, as in the groupby; a/p lost its last row.
    assert [key for key, _ in mine] == [("a", "p"), ("a", "q"), ("b", "p"), ("b", "q")]
    assert [key for key, _ in mine] == [key for key, _ in theirs]
    for (_, a), (_, b) in zip(mine, theirs, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    # Leaving out a column the caller never reads.
    _, first = next(split(rows, ["suite", "provider"], skip={"text"}))
    assert "text" not in first and first["n"].tolist() == [1, 6]


def config(write_config: Callable[..., Path], ttft: int, name: str) -> Path:
    return write_config(
        f"""
        run: {{name: nightly}}
        providers:
          - name: fast
            simulate: {{ttft_ms: {ttft}, itl_ms: 1, output_tokens: 6, abstain_rate: 0.3,
                        error_rate: 0.2, seed: 1}}
            pricing: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}
            max_retries: 0
          - name: unpriced
            simulate: {{ttft_ms: 30, itl_ms: 1, output_tokens: 6, seed: 2}}
        suites:
          - {{name: qa, kind: rag_qa, dataset: "{SAMPLE}", limit: 12}}
          - {{name: lat, kind: latency, prompts: ["Say hello.", "Count to three."],
              requests: 9}}
        """,
        name=name,
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import textwrap

    base = tmp_path_factory.mktemp("fast")
    out = base / "results"

    def write(text: str, name: str) -> Path:
        path = base / name
        path.write_text(textwrap.dedent(text))
        return path

    for night, ttft in (("night-1", 20), ("night-2", 40)):
        result = CliRunner().invoke(
            main,
            [
                "run",
                str(config(write, ttft, f"{night}.yaml")),
                "--out",
                str(out),
                "--run-id",
                night,
                "--no-progress",
            ],
        )
        assert result.exit_code == 0, result.output
    return out


def test_history_of_every_fast_metric_is_each_runs_summary(root: Path) -> None:
    runs = list_runs(root)
    assert runs == ["night-1", "night-2"]
    summaries = {r: summarize(read_frame(root, [r], SUMMARY_COLUMNS)) for r in runs}
    rows = read_frame(root, runs, sorted({c for m in FAST_METRICS for c in fast_columns(m)}))
    assert bool((rows["status"] != "ok").any())  # errors, so the counts are not all 0
    for metric in sorted(FAST_METRICS):
        series = history(rows, metric)
        assert len(series), metric
        for line in series.itertuples():
            table = summaries[line.run_id]
            expected = table[
                (table["suite"] == line.suite)
                & (table["provider"] == line.provider)
                & (table["load_level"] == line.load_level)
            ][metric]
            assert len(expected) == 1
            value = pd.to_numeric(expected, errors="coerce").to_numpy(float)[0]
            # Identical, not close: the same computation on the same values.
            assert (value == line.value) or (np.isnan(value) and np.isnan(line.value)), (
                metric,
                line,
                value,
            )


def test_history_counts_worked_by_hand(root: Path) -> None:
    rows = read_frame(root, ["night-1"], SUMMARY_COLUMNS)
    measured = rows[~rows["warmup"].astype(bool)]
    lat = measured[(measured["suite"] == "lat") & (measured["provider"] == "fast")]
    # The latency suite sends 9 measured requests per provider;
    # its error count is whatever the simulator's 10 % drew, counted here row by row.
    assert len(lat) == 9
    errors = sum(1 for status in lat["status"] if status != "ok")
    series = history(read_frame(root, ["night-1"], fast_columns("errors")), "errors", "fast")
    got = series[series["suite"] == "lat"]["value"].tolist()
    assert got == [float(errors)]
    rate = history(read_frame(root, ["night-1"], fast_columns("error_rate")), "error_rate", "fast")
    assert rate[rate["suite"] == "lat"]["value"].tolist() == [errors / 9]
    # No price for "unpriced": its cost is unknown (NaN), never 0, so the series is gone.
    cost = history(read_frame(root, ["night-1"], fast_columns("cost_usd")), "cost_usd")
    assert set(cost["provider"]) == {"fast (simulated)"}


def test_history_p50_worked_by_hand() -> None:
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    base = {"suite": "lat", "load_level": None, "provider": "p", "simulated": False}
    base |= {"error_type": None}
    lines = [
        # run, warm-up, status, from the response cache, TTFT (s), seconds after t0
        ("r1", True, "ok", None, 1.0, 0),
        ("r1", False, "ok", None, 0.010, 1),
        ("r1", False, "ok", None, 0.030, 2),
        ("r1", False, "error", None, np.nan, 3),
        ("r1", False, "ok", True, 0.001, 4),
        ("r1", False, "ok", False, 0.020, 5),
        ("r1", False, "ok", None, 0.040, 6),
        ("r2", False, "ok", None, 0.050, 86_400),
    ]
    data = pd.DataFrame(
        [
            base
            | {
                "run_id": run,
                "warmup": warm,
                "status": status,
                "from_cache": cached,
                "ttft_s": ttft,
                "started_at": t0 + pd.Timedelta(seconds=at),
            }
            for run, warm, status, cached, ttft, at in lines
        ]
    )
    series = history(data, "ttft_p50_ms", "p")
    # Run r1: measured ok TTFTs 0.010, 0.030, 0.020, 0.040 s (the 1.0 s warm-up, the
    # error and the cached row are not measured): sorted 10, 20, 30, 40 ms, the median
    # halfway between 20 and 30 = 25 ms. Run r2: 0.050 s alone = 50 ms.
    assert series["run_id"].tolist() == ["r1", "r2"]
    assert series["value"].tolist() == pytest.approx([25.0, 50.0])
    requests = history(data, "requests", "p")
    # r1: 7 rows less 1 warm-up = 6 requests (the error and the cached row count).
    assert requests["value"].tolist() == [6.0, 1.0]


def test_cli_summarize_and_history_print_what_they_printed(root: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(main, ["summarize", str(root), "--run", "night-2", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    _, _, table = load_summary(root, "night-2")  # every summary column
    expected = json.loads(table.to_json(orient="records"))
    assert json.loads(shown.stdout) == expected
    # The narrower read is the same summary as the full one.
    _, _, narrow = load_summary(root, "night-2", columns=SUMMARIZE_COLUMNS)
    pd.testing.assert_frame_equal(narrow, table, check_exact=True)
    printed = runner.invoke(
        main, ["history", str(root), "--metric", "ttft_p50_ms", "--format", "json"]
    )
    assert printed.exit_code == 0, printed.output
    lines = json.loads(printed.stdout)
    by_run = {r: summarize(read_frame(root, [r], SUMMARY_COLUMNS)) for r in ("night-1", "night-2")}
    for line in lines:
        table = by_run[line["run_id"]]
        match = table[(table["suite"] == line["suite"]) & (table["provider"] == line["provider"])]
        assert match["ttft_p50_ms"].iloc[0] == pytest.approx(line["value"], abs=0.05)
    assert {line["run_id"] for line in lines} == {"night-1", "night-2"}
