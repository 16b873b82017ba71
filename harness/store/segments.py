"""Journal segments: one JSON object a line, encoded when a row finishes, decoded to Arrow
by readers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.json as pj

from harness.errors import StoreError
from harness.store.schema import COLUMNS, SCHEMA, conform


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
    # Already the schema's columns and types; conform would hold the GIL for nothing.
    return (table if table.schema.equals(SCHEMA) else conform(table)), notes


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


def read_segment(path: Path) -> tuple[pa.Table, list[str]]:
    """One journal segment's rows and notes (see ``decode_segment``)."""
    return decode_segment(path.read_bytes(), path.name)
