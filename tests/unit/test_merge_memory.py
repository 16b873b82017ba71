"""The merge at a run's close holds a bounded working set, whatever the run's size.

It runs in the run's process as it closes, so what it holds is the step in the run's
peak RSS. It streams: one stored row group of an input at a time, and at most one
output row group pending, including when an input is itself a merged part holding the
whole run (a resumed run merges again at its close). The rows, their order, the schema
and the row groups' statistics of the merged file are those of the inputs.

Memory is measured as Arrow's own count (``MemoryPool.max_memory``: the largest number
of bytes Arrow buffers held at once) in a fresh process that does nothing but the
merge: exact for the buffers the merge holds, and unlike RSS not moved by the allocator
or the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harness.store.journal import JournalWriter
from harness.store.merge import SharedNulls, merge_parts
from harness.store.parts import read_runs
from harness.store.schema import SCHEMA

TEXT = 200  # characters of response_text a row
OFFSETS = 16  # chunk offsets a row

MERGE = """
import json, sys
from pathlib import Path
import pyarrow as pa
from harness.store.merge import SharedNulls, merge_parts
merged = merge_parts(Path(sys.argv[1]), min_parts=2, row_group_rows=1024)
print(json.dumps({"name": merged.name, "max_memory": pa.default_memory_pool().max_memory()}))
"""


def row(i: int) -> dict[str, Any]:
    return {
        "suite": "lat",
        "provider": "a" if i % 2 else "b",
        "status": "ok",
        "request_index": i,
        "started_at": datetime(2026, 12, 1, 8, 0, i % 60, tzinfo=UTC),
        "ttft_s": 0.001 * i,
        "chunk_offsets_s": [0.01 * k + i for k in range(OFFSETS)],
        "response_text": f"{i:08d}" + "x" * (TEXT - 8),
        # Set in some parts only: all null in the others' row groups, which the merge
        # does not read (their statistics say so) but fills with shared nulls.
        **({"error_type": "timeout", "http_status": 504} if i % 1500 == 0 else {}),
    }


def journal(run_dir: Path, rows: range, *, flush_rows: int) -> None:
    """Rows through the real journal, a part every ``flush_rows``, not merged."""
    writer = JournalWriter(run_dir, "r", flush_rows=flush_rows, flush_s=3600, merge_min_parts=None)
    for i in rows:
        writer.add(row(i))
    writer.close()


def resumed_run(run_dir: Path, n: int) -> None:
    """A run of ``n`` rows merged at its close, then resumed for 300 more in 3 parts."""
    journal(run_dir, range(n), flush_rows=1000)
    assert merge_parts(run_dir, min_parts=2, row_group_rows=1024) is not None
    journal(run_dir, range(n, n + 300), flush_rows=100)


def merge_in_fresh_process(run_dir: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", MERGE, str(run_dir)],
        capture_output=True,
        text=True,
        check=True,
        cwd=run_dir,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_merging_a_resumed_run_holds_row_groups_not_the_run(tmp_path: Path) -> None:
    small, big = tmp_path / "small", tmp_path / "big"
    resumed_run(small, 4_000)
    resumed_run(big, 32_000)
    peak_small = merge_in_fresh_process(small)["max_memory"]
    result = merge_in_fresh_process(big)
    # Parts 0..31 (the first merge, 1000 rows a part) and 32..34 (the resumed 300).
    assert result["name"] == "part-00000-00034.parquet"
    # Holding the whole run means holding its text and chunk offsets at least:
    # 32,000 rows x (200 B of text + 16 x 8 B of offsets) = 32,000 x 328 B = 10.5 MB.
    # Streamed, the merge holds ~2 row groups of 1,024 rows (~0.7 MB of those two
    # columns, a few MB in all with the other ~120 columns and the writer's buffers).
    assert result["max_memory"] < 32_000 * (TEXT + OFFSETS * 8), result
    # And it does not grow with the run: 8 x the rows, about the same peak.
    assert result["max_memory"] < 1.5 * peak_small, (result, peak_small)


def test_a_merge_of_a_merged_part_and_new_parts_keeps_rows_order_and_stats(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "results" / "r"
    journal(run_dir, range(5_000), flush_rows=700)  # parts of 700 rows: 0..7 (the last 100)
    before = read_runs(tmp_path / "results", ["r"])
    first = merge_parts(run_dir, min_parts=2, row_group_rows=1024)
    assert first is not None and first.name == "part-00000-00007.parquet"
    journal(run_dir, range(5_000, 5_250), flush_rows=100)  # parts 8, 9, 10: 100, 100, 50
    merged = merge_parts(run_dir, min_parts=2, row_group_rows=1024)
    assert merged is not None and merged.name == "part-00000-00010.parquet"
    assert [p.name for p in run_dir.glob("part-*.parquet")] == [merged.name]
    after = read_runs(tmp_path / "results", ["r"])
    assert after.schema.equals(SCHEMA)
    assert after.slice(0, 5_000).equals(before)  # same rows, same order
    assert after.column("request_index").to_pylist() == list(range(5_250))
    # Rows 0, 1500, 3000 and 4500 (in parts 0, 2, 4 and 6 of 700 rows) timed out.
    timed_out = after.filter(pc.equal(after.column("error_type"), "timeout"))
    assert timed_out.column("request_index").to_pylist() == [0, 1500, 3000, 4500]
    assert after.column("http_status").null_count == 5_250 - 4
    meta = pq.ParquetFile(merged).metadata
    # 5,250 rows in groups of 1,024: five full (5,120) and one of 130.
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [1024] * 5 + [130]
    index = SCHEMA.names.index("request_index")
    stats = [meta.row_group(g).column(index).statistics for g in range(meta.num_row_groups)]
    # Row group g holds request indices 1024 g .. 1024 g + 1023 (the last: 5120..5249).
    assert [(s.min, s.max) for s in stats] == [
        (0, 1023),
        (1024, 2047),
        (2048, 3071),
        (3072, 4095),
        (4096, 5119),
        (5120, 5249),
    ]


def test_shared_nulls_are_valid_columns_of_every_schema_type_over_one_buffer() -> None:
    nulls = SharedNulls()
    columns = {field.name: nulls.column(field.type, 1_000) for field in SCHEMA}
    for field in SCHEMA:
        column = columns[field.name]
        column.validate(full=True)
        assert column.type == field.type and len(column) == 1_000
        assert column.null_count == 1_000
    # Every flat column (not the lists) lies over the same zeroed buffer of
    # (1,000 + 1) x 8 = 8,008 bytes: the widest, int64 values or string offsets.
    flat = [c for c in columns.values() if not pa.types.is_list(c.type)]
    addresses = {b.address for c in flat for b in c.buffers() if b is not None}
    assert len(addresses) == 1
    assert flat[0].buffers()[1].size >= 8_008
    # A larger row group gets a larger buffer; a smaller one reuses it.
    assert nulls.column(pa.float64(), 2_000).buffers()[1].size >= 16_008
    assert nulls.column(pa.string(), 10).to_pylist() == [None] * 10
