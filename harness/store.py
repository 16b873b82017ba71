"""The results root: one Parquet dataset of every run, plus a manifest per run.

Layout::

    results/
      <run_id>/
        part-00000.parquet     rows, compacted from the journal while the run goes on
        part-00001.parquet
        _journal-00002.0.jsonl rows not compacted yet, one JSON object a line, in the two
        _journal-00002.1.jsonl   files of segment 2 (harness/journal.py writes them)
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

import dataclasses
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

from harness.errors import StoreError
from harness.secrets import redact

MANIFEST = "_manifest.json"
JOURNAL_GLOB = "_journal-*.jsonl"
PART_GLOB = "part-*.parquet"
# Set by tests/conftest.py: a row key the schema does not know raises instead
# of being dropped with a warning.
STRICT_ROWS_ENV = "HARNESS_STRICT_ROWS"

log = logging.getLogger(__name__)

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
        # the clock that timed the row: "socket" (t0 at the request's write, chunks
        # at their bytes' arrival) or "call" (litellm's fallback: t0 at the call,
        # chunks when parsed); see harness/providers/socket_stamps.py
        ("clock", pa.string()),
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
        # The clock's start on this host's monotonic clock (time.perf_counter):
        # lines a row up with stamps taken on the same host (the simulator's
        # /sim/timings, a local server's log); meaningless on another host.
        ("t0_perf_s", pa.float64()),
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
        # reasoning and visible tokens (see trace.speed_metrics)
        ("reasoning_s", pa.float64()),
        ("reasoning_chunks", pa.int64()),
        ("reasoning_tokens_client", pa.int64()),
        ("visible_tokens", pa.int64()),
        ("chunk_tokens", pa.list_(pa.int64())),
        ("tokens_per_chunk", pa.float64()),
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
        # open-loop queueing (offsets from the phase start; see harness/runner.py)
        ("scheduled_s", pa.float64()),
        ("sent_s", pa.float64()),
        ("queue_wait_s", pa.float64()),
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
        ("judge_from_cache", pa.bool_()),  # the verdict was replayed with a cached answer
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


def next_part_number(run_dir: Path) -> int:
    """One past the highest part or journal segment number (there may be gaps)."""
    numbers = [file_number(p) for p in (*run_dir.glob(PART_GLOB), *run_dir.glob(JOURNAL_GLOB))]
    return max(numbers, default=-1) + 1


def part_path(run_dir: Path, number: int) -> Path:
    return run_dir / f"part-{number:05d}.parquet"


def segment_path(run_dir: Path, number: int, side: int = 0) -> Path:
    """One of journal segment ``number``'s two files; compacted into part ``number``.

    The writer appends to one file while a thread fsyncs the other (a write
    to a file being fsynced waits for the fsync, ~5-10 ms here), then swaps.
    """
    return run_dir / f"_journal-{number:05d}.{side}.jsonl"


def file_number(path: Path) -> int:
    """The number of ``part-00003.parquet`` or ``_journal-00003.1.jsonl``."""
    return int(path.name.split("-", 1)[1].split(".", 1)[0])


COLUMNS = frozenset(SCHEMA.names)
_warned_keys: set[str] = set()


def known_columns(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """The row, checked against the schema before it is stored.

    A key the schema lacks would never reach Parquet: under tests
    (``HARNESS_STRICT_ROWS=1``) that raises; otherwise the key is dropped and
    named once in a warning, never silently.
    """
    unknown = row.keys() - COLUMNS
    if not unknown:
        return row
    if os.environ.get(STRICT_ROWS_ENV) == "1":
        raise ValueError(
            f"row keys not in the Parquet schema (harness/store.py SCHEMA): {sorted(unknown)};"
            " add a column, or remove the key before the row reaches the sink"
        )
    if unknown - _warned_keys:
        _warned_keys.update(unknown)
        log.warning("row keys not in the Parquet schema are not stored: %s", sorted(unknown))
    return {k: v for k, v in row.items() if k in COLUMNS}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in a row")


def encode_row(row: Mapping[str, Any]) -> bytes:
    """One journal line: the row as compact JSON (NaN/Infinity kept as such), newline-ended.

    Null columns are left out (readers fill them in): half of a row's columns
    are null for most suites, and leaving them out halves the encoding time.
    """
    present = {k: v for k, v in row.items() if v is not None}
    return json.dumps(present, default=_json_default, separators=(",", ":")).encode() + b"\n"


def decode_segment(data: bytes, name: str) -> tuple[pa.Table, list[str]]:
    """Rows of a journal segment, with notes about what could not be read.

    A last line without its newline is a record torn by a crash mid-write: it
    is dropped with a note. Whole lines are parsed by Arrow's JSON reader
    (which releases the GIL, so a compaction thread does not stall the event
    loop); if that fails, line by line, dropping unreadable lines with a note.
    """
    notes = []
    end = data.rfind(b"\n") + 1
    if data[end:].strip():
        notes.append(
            f"{name}: dropped a torn last record ({len(data) - end} bytes, a crash mid-write)"
        )
    body = data[:end]
    if not body.strip():
        return SCHEMA.empty_table(), notes
    try:
        table = pj.read_json(
            pa.BufferReader(body),
            read_options=pj.ReadOptions(use_threads=False, block_size=min(len(body) + 1, 2**30)),
            parse_options=pj.ParseOptions(
                explicit_schema=SCHEMA, unexpected_field_behavior="ignore"
            ),
        )
    except pa.ArrowInvalid:
        return _decode_lines(body, name, notes)
    # Already the schema's columns and types; _conform would hold the GIL for nothing.
    return (table if table.schema.equals(SCHEMA) else _conform(table)), notes


def _decode_lines(body: bytes, name: str, notes: list[str]) -> tuple[pa.Table, list[str]]:
    rows = []
    timestamps = [f.name for f in SCHEMA if pa.types.is_timestamp(f.type)]
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            for column in timestamps:
                if isinstance(row.get(column), str):
                    row[column] = datetime.fromisoformat(row[column])
        except ValueError as exc:
            notes.append(f"{name}: line {number} is unreadable ({exc}); dropped")
            continue
        rows.append((number, {k: v for k, v in row.items() if k in COLUMNS}))
    try:
        return pa.Table.from_pylist([r for _, r in rows], schema=SCHEMA), notes
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        for number, row in rows:  # name the line, so the bug can be found
            try:
                pa.Table.from_pylist([row], schema=SCHEMA)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise StoreError(f"{name}: line {number}: {exc}") from None
        raise


@dataclass
class RunFiles:
    """What a run directory holds: its parts and the journal files no part covers."""

    parts: list[Path]
    segments: list[Path]  # journal files (two per segment number)


def run_files(run_dir: Path) -> RunFiles:
    """Parts, and journal segments whose part does not exist yet.

    Segments are listed before parts: a segment compacted in between is then
    seen as covered (its part is written before it is deleted).
    """
    segments = sorted(run_dir.glob(JOURNAL_GLOB))
    parts = sorted(run_dir.glob(PART_GLOB))
    covered = {file_number(p) for p in parts}
    return RunFiles(parts, [s for s in segments if file_number(s) not in covered])


def read_segment(path: Path) -> tuple[pa.Table, list[str]]:
    """One journal segment's rows and notes (see ``decode_segment``)."""
    return decode_segment(path.read_bytes(), path.name)


def _read_run_dir(run_dir: Path) -> list[pa.Table]:
    """Every row of one run: its parts and its uncovered journal segments."""
    files = run_files(run_dir)
    tables = [_read_part(p) for p in files.parts]
    journaled: dict[int, list[pa.Table]] = {}
    compacted: set[int] = set()  # numbers whose part appeared while we read
    for segment in files.segments:
        number = file_number(segment)
        if number in compacted:
            continue
        try:
            table, notes = read_segment(segment)
        except FileNotFoundError:
            # Compacted since it was listed: its part (written before the
            # segment's files were deleted) replaces both of its files.
            compacted.add(number)
            journaled[number] = [_read_part(part_path(run_dir, number))]
            continue
        for note in notes:
            log.warning("%s: %s", run_dir.name, note)
        journaled.setdefault(number, []).append(table)
    return tables + [t for group in journaled.values() for t in group]


def _read_part(part: Path) -> pa.Table:
    try:
        return _conform(pq.read_table(part))
    except (OSError, pa.ArrowInvalid) as exc:
        raise StoreError(f"{part}: unreadable Parquet part: {exc}") from None


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
    for number, segments in by_number.items():
        part = part_path(run_dir, number)
        if not part.exists():
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
    tables: list[tuple[Path, pa.Table]] = []
    for part in sorted(run_dir.glob(PART_GLOB)):
        try:
            tables.append((part, _conform(pq.read_table(part))))
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


def write_part(path: Path, table: pa.Table) -> None:
    """Write one Parquet part atomically."""
    atomic_write(path, lambda f: pq.write_table(table, f, compression="zstd"))


def fsync_dir(path: Path) -> None:
    """Make renames and new files in a directory durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    root = Path(root)
    ids = list(run_ids) if run_ids is not None else list_runs(root)
    tables = []
    for run_id in ids:
        run_dir = root / validate_run_id(run_id)
        if not run_dir.is_dir() or not _has_rows(run_dir):
            raise StoreError(f"{root}: no run {run_id!r} (known: {', '.join(list_runs(root))})")
        tables += _read_run_dir(run_dir)
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
