"""Merging a finished run's parts into one part of large row groups.

The journal compacts a part every ``flush_s`` seconds or 1,024 rows, so a fast run of
a million requests leaves ~1,000 small files, and every report then pays a file's
fixed cost (open, footer, one tiny page per column) a thousand times: that, not the
data, was most of the time to read such a run. When the writer closes, the run's parts
are merged into one, ``part-<first>-<last>.parquet``, whose row groups hold 16,384
rows each (with min/max statistics per column, which the dataset reader uses to skip
row groups when it filters on suite or provider).

Crash-safe like the journal's own compaction: the merged part is written under a
temporary name, fsynced and renamed before any input is deleted, and every reader of
ours (``files.run_files``) leaves out a part whose numbers a merged part also covers,
so a crash between the rename and the deletes never shows a row twice; the next merge
or ``--resume`` deletes the leftovers. Rows keep their order (the parts' order, then
each part's), which is what resume's "the last finished row wins" relies on; they are
not sorted, because sorting would hold the whole run in memory at its end.

It streams, in the run's process, as the run closes: one stored row group of an input
at a time (``row_groups``), the rows of at most one output row group pending, written
as soon as there are enough; so what it holds does not grow with the run, and it is
the same for a resumed run whose earlier merged part holds the whole run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from harness.store.files import (
    atomic_write,
    fsync_dir,
    merged_part_path,
    part_range,
    run_files,
)
from harness.store.schema import SCHEMA

log = logging.getLogger(__name__)

MERGE_MIN_PARTS = 16
"""Fewer parts than this are left alone: a handful of files costs a reader little."""
ROW_GROUP_ROWS = 16_384
"""Rows per row group of a merged part; about what the merge holds in memory.

The merge runs in the run's process as it closes, so what it holds is the step in the
run's peak RSS. Merging 1M rows (benchmarks/report_scale.py's data in 1,024-row parts;
``benchmarks/run_rss.py --merge-only``) peaked at 337 MB with row groups of 65,536 rows
and 220 MB with 16,384 while the written group stayed held as the next one was read
(Arrow's pool peak: 33 MB); streamed as below, at 151 MB (16 MB), 81 MB of it imports."""


def drop_superseded(run_dir: Path) -> int:
    """Delete parts that a merged part covers (left by a crash mid-merge); how many."""
    superseded = run_files(run_dir).superseded
    for part in superseded:
        part.unlink(missing_ok=True)
    if superseded:
        fsync_dir(run_dir)
    return len(superseded)


def row_groups(parts: list[Path]) -> Iterator[pa.Table]:
    """The parts' rows in order, one stored row group at a time, conformed to ``SCHEMA``.

    One row group, not one part: a part an earlier merge wrote (a resumed run merges
    again at its close) holds the whole run. ``ParquetFile.read_row_group`` on this
    thread, not ``pq.read_table``: the dataset layer behind ``read_table`` and its
    reader threads cost ~60 MB of a process's peak the first time, for nothing a
    single file needs (the rows and the merged file's bytes are the same).

    A column whose row group holds only nulls (its statistics say so: half the columns
    of a latency run, the quality and judge ones) is not read; it becomes a null column
    over one zeroed buffer that every such column of the row group shares, instead of
    a buffer of its own (a third of the bytes the merge held).
    """
    nulls = SharedNulls()
    for part in parts:
        with pq.ParquetFile(part) as source:
            names = source.schema_arrow.names
            for index in range(source.metadata.num_row_groups):
                group = source.metadata.row_group(index)
                empty = all_null_columns(group)
                wanted = [name for name in names if name not in empty] or names[:1]
                table = source.read_row_group(index, columns=wanted, use_threads=False)
                yield nulls.conform(table, group.num_rows)


def all_null_columns(group: pq.RowGroupMetaData) -> set[str]:
    """Top-level, non-nested columns whose values in this row group are all null.

    Nested columns (lists) are always read: a leaf's null count there does not tell
    a null list from an empty one.
    """
    empty: set[str] = set()
    for i in range(group.num_columns):
        column = group.column(i)
        stats = column.statistics
        if (
            "." not in column.path_in_schema
            and stats is not None
            and stats.has_null_count
            and stats.null_count == group.num_rows
        ):
            empty.add(column.path_in_schema)
    return empty


class SharedNulls:
    """Null columns of ``SCHEMA`` types over one shared zeroed buffer."""

    def __init__(self) -> None:
        self._zeros = pa.py_buffer(b"")

    def column(self, kind: pa.DataType, rows: int) -> pa.Array:
        """``rows`` nulls of type ``kind``; lists get a buffer of their own."""
        types = pa.types
        flat = types.is_boolean(kind) or types.is_integer(kind) or types.is_floating(kind)
        if not (flat or types.is_timestamp(kind) or types.is_string(kind)):
            return pa.nulls(rows, kind)
        size = (rows + 1) * 8  # the widest buffer: int64/float64 values, string offsets
        if self._zeros.size < size:
            # Arrow's own zeroed, aligned allocation (a null int64 array's values).
            self._zeros = pa.nulls(rows + 1, pa.int64()).buffers()[1]
        zeros = self._zeros
        buffers = [zeros, zeros, zeros] if pa.types.is_string(kind) else [zeros, zeros]
        return pa.Array.from_buffers(kind, rows, buffers, null_count=rows)

    def conform(self, table: pa.Table, rows: int) -> pa.Table:
        """``schema.conform``, with the missing columns as shared nulls."""
        columns: list[pa.Array | pa.ChunkedArray] = []
        for field in SCHEMA:
            if field.name in table.column_names:
                columns.append(table.column(field.name).cast(field.type))
            else:
                columns.append(self.column(field.type, rows))
        return pa.Table.from_arrays(columns, schema=SCHEMA)


def merge_parts(
    run_dir: Path, *, min_parts: int = MERGE_MIN_PARTS, row_group_rows: int = ROW_GROUP_ROWS
) -> Path | None:
    """Merge the run's parts into one; return it, or None when there was nothing to do.

    Nothing is done while journal segments are uncovered (a crashed run: ``--resume``
    compacts them first) or when there are fewer than ``min_parts`` parts.
    """
    drop_superseded(run_dir)
    files = run_files(run_dir)
    if files.segments or len(files.parts) < min_parts:
        return None
    spans = [part_range(p) for p in files.parts]
    target = merged_part_path(run_dir, min(a for a, _ in spans), max(b for _, b in spans))

    def write(f: object) -> None:
        with pq.ParquetWriter(f, SCHEMA, compression="zstd") as writer:
            pending: list[pa.Table] = []
            held = 0
            for table in row_groups(files.parts):
                pending.append(table)
                held += table.num_rows
                if held >= row_group_rows:
                    whole = pa.concat_tables(pending)
                    full = (held // row_group_rows) * row_group_rows
                    writer.write_table(whole.slice(0, full), row_group_size=row_group_rows)
                    # The rest slices the last input only; ``whole`` must go now, or the
                    # written rows stay held while the next row group's inputs are read.
                    pending, held = [whole.slice(full)], held - full
                    del whole
            if held:
                writer.write_table(pa.concat_tables(pending), row_group_size=row_group_rows)

    atomic_write(target, write)
    fsync_dir(run_dir)  # the merged part is durable before its inputs go
    for part in files.parts:
        if part != target:
            part.unlink()
    fsync_dir(run_dir)
    log.info("%s: merged %d parts into %s", run_dir.name, len(files.parts), target.name)
    return target
