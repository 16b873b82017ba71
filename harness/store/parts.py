"""The results root: one Parquet dataset of every run, plus a manifest per run.

Layout::

    results/
      <run_id>/
        part-00000.parquet     rows, compacted from the journal while the run goes on
        part-00001.parquet
        _journal-00002.0.jsonl rows not compacted yet, one JSON object a line, in the two
        _journal-00002.1.jsonl   files of segment 2 (harness/store/journal.py writes them)
        _manifest.json         config (no secrets), hash, versions, times, status

``pandas.read_parquet("results")`` and DuckDB's
``read_parquet('results/**/*.parquet')`` load every run, with ``run_id`` as an
ordinary column (not a hive partition, so both readers agree on its type).
Files starting with ``_`` or ``.`` are skipped by Parquet readers.

Every part is written to a temporary name, fsynced and renamed, so a crash
leaves whole parts or none.

Journal segment ``N`` and part ``N`` share their number: part ``N`` holds
exactly the rows of segment ``N``, so once it exists the segment is
*covered* and readers skip it (a crash between writing the part and deleting
the segment never shows a row twice). Our readers (``read_runs``,
``list_runs``, resume) read parts plus uncovered segments; Parquet readers
see only the parts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import StoreError
from harness.store.files import (
    JOURNAL_GLOB,
    PART_GLOB,
    atomic_write,
    next_part_number,
    read_manifest,
)
from harness.store.schema import SCHEMA, known_columns

log = logging.getLogger(__name__)


class PartWriter:
    """Buffers rows of one run and writes them as numbered Parquet parts.

    A part is written when ``flush_rows`` rows are buffered or ``flush_s``
    seconds passed since the last part, so a crash loses little.
    """

    def __init__(self, run_dir: Path, run_id: str, *, flush_rows: int = 256, flush_s: float = 5.0):
        self.run_dir = run_dir
        self.run_id = run_id
        self.flush_rows = flush_rows
        self.flush_s = flush_s
        self.rows_written = 0
        self._buffer: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        run_dir.mkdir(parents=True, exist_ok=True)
        self._next_part = next_part_number(run_dir)
        # The first row conversion imports pandas (~300 ms here): pay it now, not
        # in the first flush mid-run, where it stalls the event loop under every
        # request in flight (benchmarks/README.md, "Clock health").
        pa.Table.from_pylist([{}], schema=SCHEMA)

    def add(self, row: dict[str, Any]) -> None:
        self._buffer.append({**known_columns(row), "run_id": self.run_id})
        due = time.monotonic() - self._last_flush >= self.flush_s
        if len(self._buffer) >= self.flush_rows or due:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows as one part, atomically."""
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        table = pa.Table.from_pylist(
            [{name: row.get(name) for name in SCHEMA.names} for row in self._buffer], schema=SCHEMA
        )
        final = self.run_dir / f"part-{self._next_part:05d}.parquet"
        atomic_write(final, lambda f: pq.write_table(table, f, compression="zstd"))
        self._next_part += 1
        self.rows_written += len(self._buffer)
        self._buffer.clear()


def list_runs(root: Path) -> list[str]:
    """Run ids under ``root``, oldest first (by manifest start time, then name)."""
    if not root.is_dir():
        raise StoreError(f"{root}: no such results directory")
    runs = []
    for d in root.iterdir():
        if d.is_dir() and d.name[0] not in "._" and _has_rows(d):
            runs.append((str(read_manifest(d).get("started_at", "")), d.name))
    return [name for _, name in sorted(runs)]


def _has_rows(run_dir: Path) -> bool:
    # A run killed before its first part is compacted has only journal segments.
    return any(run_dir.glob(PART_GLOB)) or any(run_dir.glob(JOURNAL_GLOB))


def read_runs(root: Path, run_ids: Iterable[str] | None = None) -> pa.Table:
    """Read the rows of the given runs (default: all) as one Arrow table.

    Rows still in the journal (a running or crashed run) are included; a torn
    last record is dropped with a logged note. Parts from older versions may
    lack newer columns; they are read with the current schema, missing
    columns as nulls.
    """
    from harness.store.dataset import read_rows  # it names list_runs' runs in errors

    root = Path(root)
    ids = list(run_ids) if run_ids is not None else list_runs(root)
    return read_rows(root, ids)
