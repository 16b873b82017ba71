"""Where a run's files live and how they are written.

Run ids, part and segment names, atomic writes, the manifest.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import StoreError
from harness.secrets import redact

MANIFEST = "_manifest.json"


JOURNAL_GLOB = "_journal-*.jsonl"


PART_GLOB = "part-*.parquet"


_RUN_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")


def validate_run_id(run_id: str) -> str:
    """A run id names a directory: no separators, no ``..``, no leading ``_``/``.``."""
    if not _RUN_ID.match(run_id) or run_id[0] in "._":
        raise StoreError(f"invalid run id {run_id!r}: use letters, digits, '-', '_' and '.'")
    return run_id


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
    """The number of ``part-00003.parquet`` or ``_journal-00003.1.jsonl``; of a merged
    part ``part-00000-00977.parquet``, the last number it covers."""
    return part_range(path)[1]


def part_range(path: Path) -> tuple[int, int]:
    """The numbers a part holds the rows of: ``(3, 3)`` for ``part-00003.parquet``,
    ``(0, 977)`` for ``part-00000-00977.parquet`` (parts 0 to 977 merged into one)."""
    numbers = path.name.split("-", 1)[1].split(".", 1)[0].split("-")
    return int(numbers[0]), int(numbers[-1])


def merged_part_path(run_dir: Path, first: int, last: int) -> Path:
    """The part that holds the rows of parts ``first`` to ``last`` (see ``store.merge``)."""
    return run_dir / f"part-{first:05d}-{last:05d}.parquet"


@dataclass
class RunFiles:
    """What a run directory holds: its parts and the journal files no part covers."""

    parts: list[Path]
    segments: list[Path]  # journal files (two per segment number)
    superseded: list[Path] = field(default_factory=list)  # parts a merged part holds


def run_files(run_dir: Path) -> RunFiles:
    """Parts, and journal segments whose part does not exist yet.

    Segments are listed before parts: a segment compacted in between is then
    seen as covered (its part is written before it is deleted). A part whose
    numbers a merged part also covers is superseded (the merge wrote the merged
    part before deleting its inputs) and left out, like a covered segment.
    """
    segments = sorted(run_dir.glob(JOURNAL_GLOB))
    parts = sorted(run_dir.glob(PART_GLOB))
    ranges = {p: part_range(p) for p in parts}
    merged = [(a, b) for a, b in ranges.values() if a != b]  # few: one per merge
    kept: list[Path] = []
    superseded: list[Path] = []
    for part, (first, last) in ranges.items():
        wider = any(a <= first and last <= b and (a, b) != (first, last) for a, b in merged)
        (superseded if wider else kept).append(part)
    spans = [ranges[p] for p in kept]
    return RunFiles(
        kept,
        [s for s in segments if not covers(spans, file_number(s))],
        superseded,
    )


def covers(spans: list[tuple[int, int]], number: int) -> bool:
    """Whether a part of these (first, last) spans holds the rows of number ``number``."""
    return any(first <= number <= last for first, last in spans)


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
