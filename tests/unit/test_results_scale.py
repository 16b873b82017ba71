"""The results root at scale: a finished run's parts merged into one, the one dataset
reader (columns, filters, journal rows), the vectorised redaction, and that pandas,
DuckDB and our reader see the same columns and rows before and after a merge."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import StoreError
from harness.secrets import SCRUB_CANDIDATE, redact_frame, scrub
from harness.store.dataset import read_batches, read_rows, redact_text
from harness.store.files import run_files
from harness.store.journal import JournalWriter
from harness.store.merge import merge_parts
from harness.store.parts import read_runs
from harness.store.resume import prepare_resume
from harness.store.schema import SCHEMA

KEY = "sk-proj-" + "Qw7Er9Ty2" * 3  # fake, key-shaped


def row(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "suite": "lat" if i % 3 else "rag",
        "provider": "a" if i % 2 else "b",
        "status": "ok",
        "request_index": i,
        "started_at": datetime(2026, 12, 1, 8, 0, i % 60, tzinfo=UTC),
        "ttft_s": 0.01 * i,
        "chunk_offsets_s": [0.1, 0.2 + i],
        "response_text": f"answer {i}",
        **extra,
    }


def journaled_run(root: Path, run_id: str, n: int, *, merge_min_parts: int | None) -> Path:
    """A run of ``n`` rows through the real journal, a part every 10 rows."""
    writer = JournalWriter(
        root / run_id, run_id, flush_rows=10, flush_s=3600, merge_min_parts=merge_min_parts
    )
    for i in range(n):
        writer.add(row(i))
    writer.close()
    return root / run_id


def test_a_closed_run_of_many_parts_is_one_merged_part(tmp_path: Path) -> None:
    small = journaled_run(tmp_path / "small", "r", 95, merge_min_parts=None)
    merged = journaled_run(tmp_path / "merged", "r", 95, merge_min_parts=4)
    # 95 rows, 10 a part: parts 0..9 (the last holds 5), merged into one covering 0-9.
    assert len(list(small.glob("part-*.parquet"))) == 10
    assert [p.name for p in merged.glob("part-*.parquet")] == ["part-00000-00009.parquet"]
    before = read_runs(tmp_path / "small", ["r"])
    after = read_runs(tmp_path / "merged", ["r"])
    assert after.equals(before)  # same rows, same order, same schema
    assert after.num_rows == 95 and after.schema.equals(SCHEMA)
    # A run of fewer parts than the threshold is left alone.
    few = journaled_run(tmp_path / "few", "r", 25, merge_min_parts=4)
    assert len(list(few.glob("part-*.parquet"))) == 3


@pytest.mark.parametrize("layout", ["small", "merged"])
def test_pandas_duckdb_and_our_reader_agree(tmp_path: Path, layout: str) -> None:
    root = tmp_path / "results"
    journaled_run(root, "r1", 95, merge_min_parts=None if layout == "small" else 4)
    journaled_run(root, "r2", 40, merge_min_parts=4)
    ours = read_runs(root).to_pandas()
    by_pandas = pd.read_parquet(root)
    by_duckdb = duckdb.sql(f"SELECT * FROM read_parquet('{root}/**/*.parquet')").df()
    assert list(by_pandas.columns) == list(by_duckdb.columns) == list(SCHEMA.names)
    assert list(ours.columns) == list(SCHEMA.names)
    for frame in (ours, by_pandas, by_duckdb):
        assert len(frame) == 95 + 40
        assert sorted(zip(frame["run_id"], frame["request_index"], strict=True)) == sorted(
            [("r1", i) for i in range(95)] + [("r2", i) for i in range(40)]
        )


def test_a_crash_between_a_merge_and_its_deletes_shows_no_row_twice(tmp_path: Path) -> None:
    small = journaled_run(tmp_path / "a", "r", 60, merge_min_parts=None)
    keep = tmp_path / "copies"
    keep.mkdir()
    for part in small.glob("part-*.parquet"):
        shutil.copy(part, keep / part.name)
    merged = merge_parts(small, min_parts=4)
    assert merged is not None and merged.name == "part-00000-00005.parquet"
    # The crash: the merged part was renamed in, two inputs were not deleted yet.
    for name in ("part-00002.parquet", "part-00005.parquet"):
        shutil.copy(keep / name, small / name)
    files = run_files(small)
    assert [p.name for p in files.parts] == ["part-00000-00005.parquet"]
    assert sorted(p.name for p in files.superseded) == ["part-00002.parquet", "part-00005.parquet"]
    assert read_runs(tmp_path / "a", ["r"]).num_rows == 60
    # Resume finishes the merge's deletes; every request is finished, none twice.
    state = prepare_resume(small)
    assert state.finished == set(range(60))
    assert [p.name for p in small.glob("part-*.parquet")] == ["part-00000-00005.parquet"]
    # A resumed run's new parts, merged again at its close, cover the old merged part.
    writer = JournalWriter(small, "r", flush_rows=10, flush_s=3600, merge_min_parts=4)
    for i in range(60, 100):
        writer.add(row(i))
    writer.close()
    assert [p.name for p in small.glob("part-*.parquet")] == ["part-00000-00009.parquet"]
    assert sorted(read_runs(tmp_path / "a", ["r"])["request_index"].to_pylist()) == list(range(100))


def test_read_rows_reads_only_the_columns_and_rows_asked_for(tmp_path: Path) -> None:
    root = tmp_path / "results"
    journaled_run(root, "r", 30, merge_min_parts=None)
    # A second writer leaves rows in its journal (not closed): they are read too.
    open_writer = JournalWriter(root / "r", "r", flush_s=3600)
    open_writer.add(row(30, provider="c"))
    table = read_rows(root, ["r"], columns=["ttft_s", "provider"], where={"provider": ["a", "c"]})
    assert table.column_names == ["provider", "ttft_s"]  # schema order
    # Rows 1, 3, ..., 29 are provider "a" (15 of them), row 30 is "c", from the journal.
    assert table.num_rows == 16
    assert set(table.column("provider").to_pylist()) == {"a", "c"}
    batches = list(read_batches(root, ["r"], columns=["request_index"], batch_rows=7))
    assert sum(b.num_rows for b in batches) == 31 and max(b.num_rows for b in batches) <= 7
    with pytest.raises(StoreError, match="no column 'nope'"):
        read_rows(root, ["r"], columns=["nope"])
    with pytest.raises(StoreError, match="no run 'gone'"):
        read_rows(root, ["gone"])
    open_writer.close()


def test_an_old_part_without_newer_columns_reads_them_as_nulls(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    run_dir = tmp_path / "old"
    run_dir.mkdir()
    old = pa.table({"run_id": ["old", "old"], "request_index": [0, 1], "ttft_s": [0.1, 0.2]})
    pq.write_table(old, run_dir / "part-00000.parquet")
    table = read_rows(tmp_path, ["old"], columns=["request_index", "ttft_s", "judge_model"])
    assert table.column("judge_model").to_pylist() == [None, None]
    assert table.column("ttft_s").to_pylist() == [0.1, 0.2]


def test_redact_text_scrubs_what_redact_frame_scrubs() -> None:
    texts = [
        "fine",
        f"Authorization: Bearer {KEY}",
        f"echo {KEY} back",
        None,
        "api_key=abcdef123456",
        "max_tokens: 12",
    ]
    table = pa.table({"response_text": texts, "ttft_s": [1.0] * 6, "x_api_key": ["v"] * 6})
    got = redact_text(table).to_pandas()
    expected = redact_frame(table.to_pandas())
    pd.testing.assert_frame_equal(got, expected)
    assert KEY not in "".join(t for t in got["response_text"] if isinstance(t, str))
    assert set(got["x_api_key"]) == {"***"}  # a secret-named column loses every value
    assert got["response_text"][5] == "max_tokens: 12"


# Text near the shapes scrub looks for: key prefixes, labels, separators, noise.
fragments = st.sampled_from(
    [
        "sk-",
        "sk-ant-",
        "AIza",
        "AKIA",
        "hf_",
        "gsk_",
        "ghp_",
        "xai-",
        "r8_",
        "eyJ",
        ".",
        "Bearer ",
        "bearer\t",
        "api_key",
        "Token",
        "PASSWORD",
        "secret_access_key",
        ":",
        "=",
        '"',
        " ",
        "-----BEGIN RSA PRIVATE KEY-----",
        "ABCDEFGHIJKLMNOP",
        "abcdefghijklmnopqrstuvwxyz0123",
        "0123456789",
        "_-",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(fragments, min_size=1, max_size=12).map("".join))
def test_every_text_scrub_changes_matches_the_candidate_pattern(text: str) -> None:
    if scrub(text) != text:
        assert re.search(SCRUB_CANDIDATE, text), text


def test_history_of_runs_one_at_a_time_equals_history_of_all_rows() -> None:
    from datetime import timedelta

    from harness.report.history import history

    from .test_decide import T0, frame, latency_rows, outcomes, rag_rows

    rows: list[dict[str, Any]] = []
    for run_id, day, ttft in [("r-late", 3, 300.0), ("r-early", 1, 100.0), ("r-mid", 2, 200.0)]:
        start = T0 + timedelta(days=day)
        rows += latency_rows("p", n=20, ttft_ms=ttft, run_id=run_id, start=start)
        rows += latency_rows("q", n=20, ttft_ms=ttft / 2, run_id=run_id, start=start)
        rows += rag_rows("p", outcomes(10, day), run_id=run_id, start=start)
    data = frame(rows)
    runs = [group for _, group in data.groupby("run_id", sort=False)]
    for metric, provider in [("ttft_p50_ms", "p"), ("ttft_p50_ms_ci_low", None), ("errors", "q")]:
        whole = history(data, metric, provider)
        pd.testing.assert_frame_equal(history(iter(runs), metric, provider), whole)
    # The p50 of 20 requests of 100, 200 and 300 ms, oldest run first.
    assert history(iter(runs), "ttft_p50_ms", "q")["value"].tolist() == [50.0, 100.0, 150.0]
    with pytest.raises(ValueError, match="unknown provider 'nobody'"):
        history(iter(runs), "ttft_p50_ms", "nobody")
