"""A finished run's summary (and the report's diff of consecutive runs) is computed once,
kept in the run's directory, and read again only while it is of the same rows, manifest
and code; every report gives the same bytes with it and without it. Real runs against
the simulator, through the CLI."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.report import summary_cache, trends
from harness.report.summary import SUMMARY_COLUMNS, load_summary, read_frame, run_slos, summarize
from harness.store.files import MANIFEST

from ..conftest import TEST_DATA

SAMPLE = TEST_DATA / "squad-v2" / "sample-200.jsonl"


def _config(write_config: Callable[..., Path], ttft: int) -> Path:
    return write_config(
        f"""
        run: {{name: nightly}}
        providers:
          - name: fast
            simulate: {{ttft_ms: {ttft}, itl_ms: 1, output_tokens: 6, abstain_rate: 0.3,
                        error_rate: 0.1, seed: 1}}
            pricing: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}
            max_retries: 0
          - name: slow
            simulate: {{ttft_ms: 40, itl_ms: 2, output_tokens: 6, seed: 2}}
            pricing: {{input_per_mtok: 0.5, output_per_mtok: 1.0}}
        suites:
          - {{name: qa, kind: rag_qa, dataset: "{SAMPLE}", limit: 8}}
          - {{name: lat, kind: latency, prompts: ["Say hello."], requests: 6,
              slo: {{ttft_ms: 30}}}}
        """,
        name="nightly.yaml",  # one config path: the runs are one series
    )


def _run(config: Path, out: Path, run_id: str) -> None:
    result = CliRunner().invoke(
        main, ["run", str(config), "--out", str(out), "--run-id", run_id, "--no-progress"]
    )
    assert result.exit_code == 0, result.output


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def root(tmp_path: Path, write_config: Callable[..., Path]) -> Path:
    out = tmp_path / "results"
    _run(_config(write_config, 10), out, "night-1")
    _run(_config(write_config, 60), out, "night-2")
    return out


def _drop_caches(root: Path) -> None:
    for path in root.glob("*/_summary*.arrow"):
        path.unlink()
    for path in root.glob("*/_trend-diff.arrow"):
        path.unlink()


def _report(root: Path, to: Path) -> str:
    _invoke("export", str(root), "--run", "night-2", "--to", str(to))
    # The one line that differs between two reports of the same run: when it was made.
    return re.sub(r"Generated [0-9-]+ [0-9:]+ UTC", "", to.read_text())


def test_a_run_keeps_its_summary_and_summarize_reads_it(root: Path) -> None:
    run_dir = root / "night-1"
    # `harness run` printed the summary, so the finished run has it.
    assert (run_dir / summary_cache.SUMMARY_FILE).is_file()
    rows = read_frame(root, ["night-1"], SUMMARY_COLUMNS)
    computed = summarize(rows, run_slos(root, "night-1"))
    found = summary_cache.cached_summary(run_dir)
    assert found is not None
    pd.testing.assert_frame_equal(found.table, computed, check_exact=True)
    assert found.started == rows["started_at"].min()
    assert found.provider_started == {
        p: rows[rows["provider"] == p]["started_at"].min() for p in ("fast", "slow")
    }
    # The readers of the rows never see it: pyarrow's dataset skips "_" files, and it
    # is no Parquet file for the widest glob a DuckDB user may write.
    assert pq.ParquetDataset(str(run_dir)).read().num_rows == len(rows)
    counted = duckdb.sql(
        f"select run_id, count(*) from read_parquet('{root}/**/*.parquet') group by run_id"
        " order by run_id"
    ).fetchall()
    assert counted == [("night-1", len(rows)), ("night-2", len(read_frame(root, ["night-2"])))]

    warm = _invoke("summarize", str(root), "--run", "night-1", "--format", "json")
    _drop_caches(root)
    cold = _invoke("summarize", str(root), "--run", "night-1", "--format", "json")
    assert warm == cold
    assert (run_dir / summary_cache.SUMMARY_FILE).is_file()  # written again


def _plant(run_dir: Path, column: str, value: float) -> None:
    """Rewrite the cached summary under its own key, with one value changed: a summary
    that shows the value was read from the cache, not computed."""
    key = {"run": summary_cache.run_fingerprint(run_dir)}
    found = summary_cache.read_cached(run_dir / summary_cache.SUMMARY_FILE, key)
    assert found is not None
    frame, extra = found
    frame[column] = value
    summary_cache.write_cached(run_dir / summary_cache.SUMMARY_FILE, key, frame, extra)


def _requests(root: Path, run_id: str) -> list[float]:
    shown = json.loads(_invoke("summarize", str(root), "--run", run_id, "--format", "json"))
    lines = shown if isinstance(shown, list) else shown["summary"]
    return sorted(float(line["requests"]) for line in lines)


def test_the_cache_is_read_while_current_and_never_after(root: Path) -> None:
    run_dir = root / "night-1"
    truth = _requests(root, "night-1")
    # 8 rag cases + 6 latency requests per provider: lines of 6 and 8 requests, twice.
    assert truth == [6.0, 6.0, 8.0, 8.0]
    _plant(run_dir, "requests", 999.0)
    assert _requests(root, "night-1") == [999.0] * 4  # it is read

    # New rows (a part the run did not have): the summary is of every row again.
    part = sorted(run_dir.glob("part-*.parquet"))[-1]
    shutil.copy(part, run_dir / "part-09999.parquet")
    doubled = _requests(root, "night-1")
    assert sum(doubled) > sum(truth) and 999.0 not in doubled

    # A changed manifest (here: the SLO) is a new key too.
    (run_dir / "part-09999.parquet").unlink()
    assert _requests(root, "night-1") == truth
    _plant(run_dir, "requests", 999.0)
    manifest = json.loads((run_dir / MANIFEST).read_text())
    manifest["note"] = "edited"
    (run_dir / MANIFEST).write_text(json.dumps(manifest))
    assert _requests(root, "night-1") == truth


def test_new_code_retires_every_cached_table(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = root / "night-1"
    before = summary_cache.run_fingerprint(run_dir)
    monkeypatch.setattr(summary_cache, "code_fingerprint", lambda: "another version")
    after = summary_cache.run_fingerprint(run_dir)
    assert before is not None and after is not None and before != after
    assert summary_cache.cached_summary(run_dir) is None


def test_unfinished_runs_and_unreadable_caches(root: Path) -> None:
    run_dir = root / "night-1"
    manifest = json.loads((run_dir / MANIFEST).read_text())
    (run_dir / MANIFEST).write_text(json.dumps({**manifest, "status": "running"}))
    assert summary_cache.run_fingerprint(run_dir) is None
    (run_dir / summary_cache.SUMMARY_FILE).unlink()
    load_summary(root, "night-1")
    assert not (run_dir / summary_cache.SUMMARY_FILE).exists()  # a running run: not kept
    (run_dir / MANIFEST).write_text(json.dumps(manifest))

    truth = _requests(root, "night-1")
    (run_dir / summary_cache.SUMMARY_FILE).write_bytes(b"not parquet")
    assert _requests(root, "night-1") == truth  # a miss, computed and written again
    assert summary_cache.cached_summary(run_dir) is not None
    (run_dir / summary_cache.SUMMARY_FILE).unlink()
    (run_dir / summary_cache.SUMMARY_FILE).mkdir()  # cannot be written: no error either
    assert _requests(root, "night-1") == truth


def test_reports_are_the_same_with_and_without_caches(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _drop_caches(root)
    cold = _report(root, tmp_path / "cold.html")
    # The first report kept night-2's summary, night-1's point values and their diff.
    assert (root / "night-2" / summary_cache.SUMMARY_FILE).is_file()
    assert (root / "night-1" / summary_cache.POINTS_FILE).is_file()
    assert (root / "night-2" / summary_cache.TREND_DIFF_FILE).is_file()
    assert "trend-ttft_p50_ms" in cold

    def unread(*args: object, **kwargs: object) -> None:
        raise AssertionError("an earlier run's rows were read")

    monkeypatch.setattr(trends, "_earlier_run", unread)
    warm = _report(root, tmp_path / "warm.html")
    assert warm == cold
    # TTFT went from 10 to 60 ms on "fast": the trend marks that change.
    assert "▲" in warm


def test_history_of_any_metric_is_each_runs_summary_with_its_slos(
    root: Path, tmp_path: Path
) -> None:
    from harness.report.history import history, run_history

    runs = ["night-1", "night-2"]
    rows = read_frame(root, runs, SUMMARY_COLUMNS)
    slos = {run: run_slos(root, run) for run in runs}
    assert slos["night-1"] == {"lat": {"ttft_ms": 30}}
    _drop_caches(root)
    for metric in ("goodput", "exact_match_abstain", "ttft_p50_ms_ci_low", "throughput_rps"):
        for provider in (None, "fast", "slow (simulated)"):
            expected = history(rows, metric, provider, slos=slos)
            cold = run_history(root, runs, metric, provider)  # computes and keeps
            warm = run_history(root, runs, metric, provider)  # reads what was kept
            pd.testing.assert_frame_equal(cold, expected, check_exact=True)
            pd.testing.assert_frame_equal(warm, expected, check_exact=True)
    # Point values a report's trend kept (night-1's, a provider at a time) serve too,
    # with each provider's own start.
    _drop_caches(root)
    _report(root, tmp_path / "r.html")
    assert (root / "night-1" / summary_cache.POINTS_FILE).is_file()
    assert not (root / "night-1" / summary_cache.SUMMARY_FILE).exists()
    for provider in (None, "fast", "slow"):
        expected = history(rows, "exact_match_abstain", provider, slos=slos)
        got = run_history(root, runs, "exact_match_abstain", provider)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
    # The CLI had no SLOs for history: "unknown metric 'goodput'", though summarize
    # showed it. "slow" answers after 40 ms, over the 30 ms SLO: no request meets it.
    shown = json.loads(_invoke("history", str(root), "--metric", "goodput", "--format", "json"))
    slow = [line["value"] for line in shown if line["provider"] == "slow (simulated)"]
    assert slow == [0.0, 0.0]
    with pytest.raises(ValueError, match="unknown provider 'nobody'"):
        run_history(root, runs, "goodput", "nobody")
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        run_history(root, runs, "nope")


def test_a_diff_of_some_metrics_is_those_rows_of_the_whole_diff(root: Path) -> None:
    from harness.report.diff import DIFF_ROW_COLUMNS, diff_runs

    a, b = (read_frame(root, [run], DIFF_ROW_COLUMNS) for run in ("night-1", "night-2"))
    whole = diff_runs(a, b, n_resamples=400)
    # The trend's metrics: the p50s without the p95 they share a bootstrap with.
    some = ("ttft_p50_ms", "e2e_p50_ms", "exact_match_abstain", "usd_per_1k_requests")
    part = diff_runs(a, b, n_resamples=400, metrics=some)
    expected = whole[whole["metric"].isin(some)].reset_index(drop=True)
    assert set(part["metric"]) == set(some) and len(part) < len(whole)
    pd.testing.assert_frame_equal(part, expected, check_exact=True)
    with pytest.raises(ValueError, match="unknown diff metrics: nope"):
        diff_runs(a, b, metrics=("nope",))


def test_a_run_keeps_its_trend_diff_for_its_first_report(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `harness run` of night-2 found night-1's summary kept, so it kept their diff too.
    assert (root / "night-2" / summary_cache.TREND_DIFF_FILE).is_file()
    assert not (root / "night-1" / summary_cache.TREND_DIFF_FILE).exists()  # the first

    def unread(*args: object, **kwargs: object) -> None:
        raise AssertionError("the report computed what the run kept")

    with monkeypatch.context() as patch:
        patch.setattr(trends, "_earlier_run", unread)
        patch.setattr(trends, "_changes", unread)
        first = _report(root, tmp_path / "first.html")
    _drop_caches(root)
    assert _report(root, tmp_path / "cold.html") == first
