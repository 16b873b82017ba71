"""The results root: one Parquet dataset of every run, plus a manifest per run.

Layout::

    results/
      <run_id>/
        part-00000.parquet     rows, flushed while the run goes on
        part-00001.parquet
        _manifest.json         config (no secrets), hash, versions, times, status

``pandas.read_parquet("results")`` and DuckDB's
``read_parquet('results/**/*.parquet')`` load every run, with ``run_id`` as an
ordinary column (not a hive partition, so both readers agree on its type).
Files starting with ``_`` or ``.`` are skipped by Parquet readers.

Every part is written to a temporary name, fsynced and renamed, so a crash
leaves whole parts or none.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import StoreError
from harness.secrets import redact

MANIFEST = "_manifest.json"

SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("request_index", pa.int64()),
        ("suite", pa.string()),
        ("suite_kind", pa.string()),
        ("case_id", pa.string()),
        ("repeat", pa.int64()),
        ("load_level", pa.string()),
        ("warmup", pa.bool_()),
        ("provider", pa.string()),
        ("model", pa.string()),
        ("simulated", pa.bool_()),
        ("transport", pa.string()),
        ("from_cache", pa.bool_()),
        ("max_tokens", pa.int64()),
        ("status", pa.string()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("http_status", pa.int64()),
        ("attempts", pa.int64()),
        ("retry_wait_s", pa.float64()),
        ("retry_after_s", pa.float64()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("first_chunk_s", pa.float64()),
        ("first_reasoning_s", pa.float64()),
        ("ttft_s", pa.float64()),
        ("e2e_s", pa.float64()),
        ("itl_s", pa.float64()),
        ("tpot_s", pa.float64()),
        ("output_tps", pa.float64()),
        ("chunk_offsets_s", pa.list_(pa.float64())),
        ("text_chunks", pa.int64()),
        ("output_tokens_client", pa.int64()),
        ("tokens_mismatch", pa.bool_()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cached_input_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("cache_write_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("price_source", pa.string()),
        ("price_input_per_mtok", pa.float64()),
        ("price_output_per_mtok", pa.float64()),
        ("input_chars", pa.int64()),
        ("output_chars", pa.int64()),
        ("schedule_lag_s", pa.float64()),
        ("send_delay_s", pa.float64()),
        ("loop_lag_ms", pa.float64()),
        ("client_cpu", pa.float64()),
        ("clock_ok", pa.bool_()),
        ("worker", pa.int64()),
        ("finish_reason", pa.string()),
        ("response_text", pa.string()),
        # rag_qa scores (null for other suite kinds)
        ("references", pa.list_(pa.string())),
        ("answerable", pa.bool_()),
        ("exact_match", pa.float64()),
        ("f1", pa.float64()),
        ("exact_match_abstain", pa.float64()),
        ("f1_abstain", pa.float64()),
        ("contains", pa.float64()),
        ("regex_match", pa.float64()),
        ("abstained", pa.bool_()),
        ("judge_model", pa.string()),
        ("judge_correctness", pa.float64()),
        ("judge_faithful", pa.bool_()),
        ("judge_rationale", pa.string()),
        ("judge_error", pa.string()),
        ("judge_input_tokens", pa.int64()),
        ("judge_output_tokens", pa.int64()),
        ("judge_cost_usd", pa.float64()),
    ]
)

_RUN_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")


def validate_run_id(run_id: str) -> str:
    """A run id names a directory: no separators, no ``..``, no leading ``_``/``.``."""
    if not _RUN_ID.match(run_id) or run_id[0] in "._":
        raise StoreError(f"invalid run id {run_id!r}: use letters, digits, '-', '_' and '.'")
    return run_id


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

    def add(self, row: dict[str, Any]) -> None:
        self._buffer.append({**row, "run_id": self.run_id})
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


def next_part_number(run_dir: Path) -> int:
    """One past the highest existing part number (parts may have gaps after a resume)."""
    numbers = [int(p.stem.split("-")[1]) for p in run_dir.glob("part-*.parquet")]
    return max(numbers, default=-1) + 1


FINISHED = ("ok", "error")


def prepare_resume(run_dir: Path) -> tuple[set[int], list[str]]:
    """Make a run resumable; returns (finished request indices, notes).

    Rows of requests that were cancelled (in flight at Ctrl-C) are removed, so
    the resumed run holds exactly one row per request: every part is read,
    the rows to keep are written as one new part (atomically), then the old
    parts are deleted. A part that cannot be read is renamed ``_corrupt-…``
    (readers skip it), reported, and its requests are sent again.
    """
    notes: list[str] = []
    tables = []
    parts = sorted(run_dir.glob("part-*.parquet"))
    for part in parts:
        try:
            tables.append(_conform(pq.read_table(part)))
        except (OSError, pa.ArrowInvalid) as exc:
            quarantined = part.with_name(f"_corrupt-{part.name}")
            os.replace(part, quarantined)
            notes.append(f"{part.name} was unreadable ({exc}); moved to {quarantined.name}")
    if not tables:
        return set(), notes
    rows = pa.concat_tables(tables).to_pandas()
    finished = rows[rows["status"].isin(FINISHED)]
    # A crash between writing the merged part and deleting the old ones leaves
    # duplicates; the last finished row of each request wins.
    kept = finished.drop_duplicates(subset="request_index", keep="last")
    if len(kept) != len(rows):
        readable = [p for p in parts if p.exists()]
        merged = pa.Table.from_pandas(kept, schema=SCHEMA, preserve_index=False)
        final = run_dir / f"part-{next_part_number(run_dir):05d}.parquet"
        atomic_write(final, lambda f: pq.write_table(merged, f, compression="zstd"))
        for part in readable:
            part.unlink()
        notes.append(f"dropped {len(rows) - len(kept)} cancelled or duplicate rows")
    return {int(i) for i in kept["request_index"].dropna()}, notes


def atomic_write(path: Path, write: Any) -> None:
    """Write via a temporary ``.name.tmp`` (skipped by readers), fsync, then rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    """Write (or rewrite) the run's manifest atomically, secrets redacted (a last defence)."""
    data = json.dumps(redact(manifest), indent=2, sort_keys=True, default=str).encode()
    atomic_write(run_dir / MANIFEST, lambda f: f.write(data))


def read_manifest(run_dir: Path) -> dict[str, Any]:
    try:
        result: dict[str, Any] = json.loads((run_dir / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return result


def list_runs(root: Path) -> list[str]:
    """Run ids under ``root``, oldest first (by manifest start time, then name)."""
    if not root.is_dir():
        raise StoreError(f"{root}: no such results directory")
    runs = []
    for d in root.iterdir():
        if d.is_dir() and d.name[0] not in "._" and any(d.glob("part-*.parquet")):
            runs.append((str(read_manifest(d).get("started_at", "")), d.name))
    return [name for _, name in sorted(runs)]


def read_runs(root: Path, run_ids: Iterable[str] | None = None) -> pa.Table:
    """Read the rows of the given runs (default: all) as one Arrow table.

    Parts from older versions may lack newer columns; they are read with the
    current schema, missing columns as nulls.
    """
    root = Path(root)
    ids = list(run_ids) if run_ids is not None else list_runs(root)
    tables = []
    for run_id in ids:
        run_dir = root / validate_run_id(run_id)
        parts = sorted(run_dir.glob("part-*.parquet"))
        if not parts:
            raise StoreError(f"{root}: no run {run_id!r} (known: {', '.join(list_runs(root))})")
        for part in parts:
            try:
                table = pq.read_table(part)
            except (OSError, pa.ArrowInvalid) as exc:
                raise StoreError(f"{part}: unreadable Parquet part: {exc}") from None
            tables.append(_conform(table))
    if not tables:
        return SCHEMA.empty_table()
    return pa.concat_tables(tables)


def _conform(table: pa.Table) -> pa.Table:
    columns = []
    for field in SCHEMA:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=SCHEMA)
