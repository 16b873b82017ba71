"""The row journal: rows readable before any part exists, crash-safe compaction, torn records,
resume from the journal, and row keys the schema does not know."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from harness.store.files import segment_path
from harness.store.journal import JournalWriter
from harness.store.parts import PartWriter, list_runs, read_runs
from harness.store.resume import prepare_resume
from harness.store.segments import encode_row


def row(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "suite": "s",
        "provider": "p",
        "status": "ok",
        "request_index": i,
        "started_at": datetime(2026, 12, 1, 8, 0, i, 250_000, tzinfo=UTC),
        "chunk_offsets_s": [0.1, 0.2 + i],
        "response_text": f'answer {i}\nwith a newline and "quotes"',
        **extra,
    }


def journal_files(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.glob("_journal-*.jsonl"))


def crashed_journal(run_dir: Path, number: int, side0: bytes, side1: bytes = b"") -> None:
    """The two files of journal segment ``number`` as a killed run left them."""
    run_dir.mkdir(parents=True, exist_ok=True)
    segment_path(run_dir, number, 0).write_bytes(side0)
    segment_path(run_dir, number, 1).write_bytes(side1)


def lines(*rows: dict[str, Any]) -> list[bytes]:
    return [encode_row({**r, "run_id": "r"}) for r in rows]


def part_files(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.glob("part-*.parquet"))


def test_rows_are_readable_before_any_part_exists(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path / "r", "r", flush_s=3600)
    for i in range(3):
        writer.add(row(i))
    # No part yet: the rows are in the journal, which our readers include.
    assert part_files(tmp_path / "r") == []
    # Segment 0 is two files: the writer appends to one while the other is fsynced.
    assert journal_files(tmp_path / "r") == ["_journal-00000.0.jsonl", "_journal-00000.1.jsonl"]
    assert list_runs(tmp_path) == ["r"]
    rows = read_runs(tmp_path).to_pandas()
    assert list(rows["request_index"]) == [0, 1, 2]
    assert list(rows["run_id"]) == ["r"] * 3
    assert list(rows["chunk_offsets_s"][2]) == [0.1, 2.2]
    assert rows["response_text"][1] == 'answer 1\nwith a newline and "quotes"'
    assert rows["started_at"][2] == pd.Timestamp("2026-12-01T08:00:02.25Z")
    writer.close()
    # Closed: everything compacted into the part of the segment's number, no journal left.
    assert journal_files(tmp_path / "r") == []
    assert part_files(tmp_path / "r") == ["part-00000.parquet"]
    assert list(pd.read_parquet(tmp_path)["request_index"]) == [0, 1, 2]


def test_rows_become_durable_without_waiting_for_a_part(tmp_path: Path) -> None:
    durable: list[tuple[int, float]] = []
    writer = JournalWriter(
        tmp_path / "r", "r", flush_s=3600, on_durable=lambda n, t: durable.append((n, t))
    )
    added = time.perf_counter()
    writer.add(row(0))
    deadline = time.monotonic() + 5
    while writer.durable_rows < 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert writer.durable_rows == 1
    first = next(t for n, t in durable if n >= 1)
    # The fsync runs as soon as the row is written: ~0.1 ms here; the bound is
    # generous for a loaded machine, the benchmark measures the real window.
    assert 0 <= first - added < 1.0
    writer.close()


def test_segments_rotate_into_numbered_parts(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path / "r", "r", flush_rows=2, flush_s=3600)
    for i in range(5):
        writer.add(row(i))
    writer.close()
    # 5 rows, 2 per segment: segments 0, 1, 2 → parts 0, 1, 2 (2 + 2 + 1 rows).
    assert part_files(tmp_path / "r") == [f"part-0000{n}.parquet" for n in range(3)]
    assert [len(pd.read_parquet(tmp_path / "r" / p)) for p in part_files(tmp_path / "r")] == [
        2,
        2,
        1,
    ]
    assert writer.parts_written == 3
    assert not list((tmp_path / "r").glob(".*"))  # no temporary files left


def test_a_segment_its_part_covers_is_never_read_twice(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    writer = JournalWriter(run_dir, "r", flush_s=3600)
    for i in range(3):
        writer.add(row(i))
    saved = {n: (run_dir / n).read_bytes() for n in journal_files(run_dir)}
    writer.close()
    # A crash after part 0 was written but before segment 0's files were deleted:
    for name, data in saved.items():
        (run_dir / name).write_bytes(data)
    assert sum(len(d.splitlines()) for d in saved.values()) == 3
    assert list(read_runs(tmp_path).to_pandas()["request_index"]) == [0, 1, 2]
    state = prepare_resume(run_dir)
    assert state.finished == {0, 1, 2}
    assert journal_files(run_dir) == []  # the covered segment is gone
    assert len(read_runs(tmp_path)) == 3
    # A new writer numbers its segment past every existing part.
    again = JournalWriter(run_dir, "r", flush_s=3600)
    again.add(row(3))
    assert journal_files(run_dir)[0] == "_journal-00001.0.jsonl"
    again.close()
    assert list(read_runs(tmp_path).to_pandas()["request_index"]) == [0, 1, 2, 3]


def test_a_torn_last_record_is_dropped_with_a_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_dir = tmp_path / "r"
    first, second, third = lines(row(0), row(1), row(2))
    # A kill in the middle of the last record's write: half of it on disk.
    crashed_journal(run_dir, 0, first + third[: len(third) // 2], second)
    with caplog.at_level(logging.WARNING, logger="harness.store.parts"):
        rows = read_runs(tmp_path).to_pandas()
    assert sorted(rows["request_index"]) == [0, 1]
    assert "_journal-00000.0.jsonl: dropped a torn last record" in caplog.text
    assert list_runs(tmp_path) == ["r"]
    state = prepare_resume(run_dir)
    assert state.finished == {0, 1}  # request 2 is sent again
    assert any("torn last record" in note for note in state.notes)
    assert journal_files(run_dir) == []
    assert sorted(pd.read_parquet(run_dir)["request_index"]) == [0, 1]


def test_an_unreadable_line_inside_a_segment_is_dropped_with_a_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_dir = tmp_path / "r"
    first, _, third = lines(row(0), row(1), row(2))
    crashed_journal(run_dir, 0, first + b"\x00\x00garbage\n" + third)
    with caplog.at_level(logging.WARNING, logger="harness.store.parts"):
        rows = read_runs(tmp_path).to_pandas()
    assert list(rows["request_index"]) == [0, 2]
    assert "line 2 is unreadable" in caplog.text
    # Read line by line, the types are still the schema's.
    assert rows["started_at"][1] == pd.Timestamp("2026-12-01T08:00:02.25Z")
    assert list(rows["chunk_offsets_s"][1]) == [0.1, 2.2]


def test_parquet_readers_skip_the_journal(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    writer = JournalWriter(run_dir, "r", flush_rows=2, flush_s=3600)
    for i in range(3):
        writer.add(row(i))
    deadline = time.monotonic() + 10
    while list(run_dir.glob("_journal-00000.*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    # Rows 0 and 1 are compacted; row 2 is only in the journal (segment 1).
    assert part_files(run_dir) == ["part-00000.parquet"]
    assert journal_files(run_dir) == ["_journal-00001.0.jsonl", "_journal-00001.1.jsonl"]
    assert list(pd.read_parquet(tmp_path)["request_index"]) == [0, 1]
    found = duckdb.sql(f"select request_index from read_parquet('{tmp_path}/**/*.parquet')")
    assert sorted(r[0] for r in found.fetchall()) == [0, 1]
    assert sorted(read_runs(tmp_path).to_pandas()["request_index"]) == [0, 1, 2]
    writer.close()


def test_resume_keeps_one_finished_row_per_request_and_recovers_the_spend(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "r"
    old = PartWriter(run_dir, "r")  # rows an earlier attempt compacted
    old.add(row(0, cost_usd=0.5, judge_cost_usd=0.25))
    old.add(row(1, status="cancelled", error_type="cancelled"))
    old.add(row(2, cost_usd=1.0))
    old.flush()
    # What a killed run left in the journal: rows no part holds yet.
    journaled = lines(
        row(1, cost_usd=2.0),
        row(3, cost_usd=4.0, from_cache=True),
        row(4, status="cancelled", error_type="cancelled", cost_usd=8.0),
        row(5, status="error", cost_usd=None),
    )
    crashed_journal(run_dir, 1, journaled[0] + journaled[2], journaled[1] + journaled[3])
    state = prepare_resume(run_dir)
    assert state.finished == {0, 1, 2, 3, 5}
    # Finished rows: 0.5 + 0.25 (request 0) + 1.0 (2) + 2.0 (1); request 3 came
    # from the cache (nothing bought), request 4 was cancelled, 5 has no price.
    assert state.spent_usd == pytest.approx(3.75)
    assert state.notes == ["dropped 2 cancelled, never sent or duplicate rows"]
    # The part that lost its cancelled row was rewritten in place: no new part.
    assert part_files(run_dir) == ["part-00000.parquet", "part-00001.parquet"]
    rows = read_runs(tmp_path).to_pandas()
    assert sorted(rows["request_index"]) == [0, 1, 2, 3, 5]
    assert set(rows["status"]) == {"ok", "error"}


def test_unknown_row_keys_raise_under_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    writer = JournalWriter(tmp_path / "r", "r", flush_s=3600)
    with pytest.raises(ValueError, match=r"not in the Parquet schema.*'no_such_column'"):
        writer.add(row(0, no_such_column=1))
    with pytest.raises(ValueError, match="no_such_column"):
        PartWriter(tmp_path / "p", "p").add(row(0, no_such_column=1))
    monkeypatch.delenv("HARNESS_STRICT_ROWS")
    with caplog.at_level(logging.WARNING, logger="harness.store.parts"):
        writer.add(row(1, no_such_column=1))
    assert "no_such_column" in caplog.text  # dropped, but said so
    writer.add(row(2, t0_perf_s=12.5))  # stored, not dropped
    writer.close()
    rows = read_runs(tmp_path, ["r"]).to_pandas()
    assert list(rows["request_index"]) == [1, 2]
    assert "no_such_column" not in rows.columns
    assert rows["t0_perf_s"].tolist()[1] == 12.5
