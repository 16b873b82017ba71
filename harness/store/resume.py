"""Resuming a run: compact what the journal holds, then say which requests are finished
and what they cost.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness.store.files import (
    JOURNAL_GLOB,
    covers,
    file_number,
    fsync_dir,
    part_path,
    part_range,
    run_files,
    write_part,
)
from harness.store.merge import drop_superseded
from harness.store.schema import conform
from harness.store.segments import read_segment

FINISHED = ("ok", "error")


@dataclass
class ResumeState:
    """What a resumed run starts from."""

    finished: set[int]  # request indices with a finished row: not sent again
    notes: list[str] = dataclasses.field(default_factory=list)
    # cost_usd + judge_cost_usd of those rows (cache hits cost nothing): the
    # budget spent before the crash, so the resumed run's budget starts there.
    spent_usd: float = 0.0


def compact_journal(run_dir: Path) -> list[str]:
    """Turn every uncovered journal segment into its part, delete the segments; notes.

    Crash-safe at every step: part ``N`` is complete (atomic write, directory
    fsynced) before segment ``N`` is deleted, and a covered segment is skipped
    by every reader.
    """
    notes: list[str] = []
    for tmp in run_dir.glob(".part-*.parquet.tmp"):
        tmp.unlink()  # a part whose write a crash interrupted; its segment still exists
    by_number: dict[int, list[Path]] = {}
    for segment in sorted(run_dir.glob(JOURNAL_GLOB)):
        by_number.setdefault(file_number(segment), []).append(segment)
    spans = [part_range(p) for p in run_files(run_dir).parts]
    for number, segments in by_number.items():
        part = part_path(run_dir, number)
        if not covers(spans, number):
            tables = []
            for segment in segments:
                table, segment_notes = read_segment(segment)
                notes += segment_notes
                tables.append(table)
            table = pa.concat_tables(tables)
            if table.num_rows:
                write_part(part, table)
                fsync_dir(run_dir)
        for segment in segments:
            segment.unlink()
    return notes


def prepare_resume(run_dir: Path) -> ResumeState:
    """Make a run resumable: compact its journal, keep one finished row per request.

    Rows of requests that were cancelled (in flight at Ctrl-C), or never sent
    because their provider was unavailable, are removed, so the resumed run
    holds exactly one row per request; if a request has two
    finished rows (a crash inside an older version's merge), the last wins.
    A part that loses rows is rewritten in place (atomically: a crash leaves
    the old part or the new one, never both). A part that cannot be read is
    renamed ``_corrupt-…`` (readers skip it), reported, and its requests are
    sent again.
    """
    notes = compact_journal(run_dir)
    drop_superseded(run_dir)  # a crash between a merge and its deletes
    tables: list[tuple[Path, pa.Table]] = []
    for part in run_files(run_dir).parts:
        try:
            tables.append((part, conform(pq.read_table(part))))
        except (OSError, pa.ArrowInvalid) as exc:
            quarantined = part.with_name(f"_corrupt-{part.name}")
            os.replace(part, quarantined)
            notes.append(f"{part.name} was unreadable ({exc}); moved to {quarantined.name}")
    state = ResumeState(set(), notes)
    seen: set[Any] = set()
    dropped = 0
    for part, table in reversed(tables):
        columns = table.select(
            ["request_index", "status", "error_type", "from_cache", "cost_usd", "judge_cost_usd"]
        ).to_pylist()
        keep = [False] * table.num_rows
        for i in reversed(range(table.num_rows)):
            row = columns[i]
            # A request never sent because its provider was gone (runner.UNAVAILABLE)
            # is not finished: it is sent now.
            never_sent = row["error_type"] == "provider_unavailable"
            if row["status"] in FINISHED and not never_sent and row["request_index"] not in seen:
                seen.add(row["request_index"])
                keep[i] = True
                if not row["from_cache"]:
                    state.spent_usd += (row["cost_usd"] or 0.0) + (row["judge_cost_usd"] or 0.0)
        if all(keep):
            continue
        dropped += keep.count(False)
        if any(keep):
            write_part(part, table.filter(pa.array(keep)))
        else:
            part.unlink()
    if dropped:
        notes.append(f"dropped {dropped} cancelled, never sent or duplicate rows")
    state.finished = {int(i) for i in seen if i is not None}
    return state
