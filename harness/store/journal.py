"""The row journal: every finished row is on disk at once, and durable within milliseconds.

The sink hands each row to ``JournalWriter.add``, which encodes it as one JSON
line and appends it to the run's current segment with a single ``write()`` on
the caller's thread (a few µs: the bytes are then the kernel's, so a killed
process loses no row it handed over). A background thread fsyncs in batches
(group commit: rows written while one fsync runs are covered by the next, at
most one round every ``SYNC_INTERVAL_S``), so a row survives a power loss
within about 10 ms plus two fsyncs of finishing. No fsync runs on the event
loop, and no write waits for one: a ``write()`` to a file that is being
fsynced blocks until the fsync ends (5-10 ms on this disk), so a segment has
two files and the thread swaps them before each fsync — the caller always
appends to the one not being synced.

Segments rotate every ``flush_s`` seconds or ``flush_rows`` rows; a second
thread compacts segment ``N`` into ``part-N.parquet`` (Arrow's JSON reader and
the Parquet writer release the GIL, so compaction does not stall the event
loop the way building a part there did), fsyncs the directory, then deletes
the segment. ``close`` compacts the last one, so a run that ends normally
leaves only Parquet parts. After a crash, readers and ``--resume`` read the
segments (see ``harness.store.parts``).

JSON lines rather than Arrow IPC: encoding a row costs ~80 µs against ~460 µs
for a one-row record batch, a torn last record is simply a line without its
newline, and ``benchmarks/journal.py`` measures both.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import StoreError
from harness.store.files import fsync_dir, next_part_number, part_path, segment_path, write_part
from harness.store.merge import MERGE_MIN_PARTS, merge_parts
from harness.store.schema import known_columns
from harness.store.segments import decode_segment, encode_row

log = logging.getLogger(__name__)

# Called from the fsync thread with (rows durable so far, time.perf_counter()).
DurableHook = Callable[[int, float], None]


@dataclass(eq=False)
class _Segment:
    number: int
    paths: tuple[Path, Path]
    fds: tuple[int, int]
    opened: float
    active: int = 0  # the file the caller appends to; the other one may be fsyncing
    dirty: list[bool] = field(default_factory=lambda: [False, False])
    synced: list[bool] = field(default_factory=lambda: [False, False])  # directory entry
    lines: list[bytes] = field(default_factory=list)


class JournalWriter:
    """Journals each row of one run as it arrives; compacts segments into Parquet parts.

    A drop-in for ``PartWriter`` (``add``, ``rows_written``); call ``close``
    at the end of the run (it waits for the last compaction).
    """

    # fsync rounds start at most this often: batches rows when they come fast,
    # and bounds the loss window (on power loss) to about this plus one fsync.
    SYNC_INTERVAL_S = 0.01

    def __init__(
        self,
        run_dir: Path,
        run_id: str,
        *,
        flush_rows: int = 1024,  # a part's fixed cost: 64 µs/row at 256 rows, 32 at 1024
        flush_s: float = 5.0,
        on_durable: DurableHook | None = None,
        merge_min_parts: int | None = MERGE_MIN_PARTS,
    ):
        self.run_dir = run_dir
        # At close, parts are merged into one when there are at least this many
        # (harness/store/merge.py); None: never.
        self.merge_min_parts = merge_min_parts
        self.run_id = run_id
        self.flush_rows = flush_rows
        self.flush_s = flush_s
        self.rows_written = 0  # rows handed to the journal (also counts a resumed run's)
        self.durable_rows = 0  # rows of this writer fsynced so far
        self.parts_written = 0
        self.on_durable = on_durable
        run_dir.mkdir(parents=True, exist_ok=True)
        self._next = next_part_number(run_dir)
        # Held while a row is written and while the fsync thread swaps files
        # (microseconds), never during an fsync.
        self._lock = threading.Lock()
        self._segment: _Segment | None = None
        self._retired: list[_Segment] = []
        self._appended = 0
        self._closing = False
        self._closed = False
        self._wake = threading.Event()
        self._to_compact: queue.Queue[_Segment | None] = queue.Queue()
        self._errors: list[str] = []
        self._dir_fd = os.open(run_dir, os.O_RDONLY)
        self._syncer = threading.Thread(target=self._sync_loop, name="journal-fsync", daemon=True)
        self._compactor = threading.Thread(
            target=self._compact_loop, name="journal-compact", daemon=True
        )
        self._syncer.start()
        self._compactor.start()

    def add(self, row: Mapping[str, Any]) -> None:
        """Append one row to the journal (returns once the kernel has it)."""
        if self._closing:
            raise StoreError(f"{self.run_dir}: the journal is closed")
        data = encode_row({**known_columns(row), "run_id": self.run_id})
        segment = self._segment or self._open()
        with self._lock:
            fd = segment.fds[segment.active]
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            segment.dirty[segment.active] = True
            self._appended += 1
        segment.lines.append(data)
        self.rows_written += 1
        self._wake.set()
        if (
            len(segment.lines) >= self.flush_rows
            or time.monotonic() - segment.opened >= self.flush_s
        ):
            self._rotate()

    def flush(self) -> None:
        """Start a new segment; the current one is compacted into a part in the background."""
        if self._segment is not None:
            self._rotate()

    def close(self) -> None:
        """Fsync and compact everything; raises ``StoreError`` if a compaction failed.

        The rows stay in their journal segment when one fails, so nothing is
        lost: readers and ``--resume`` still see them.
        """
        if self._closed:
            return
        with self._lock:
            if self._segment is not None:
                self._retired.append(self._segment)
                self._segment = None
            self._closing = True
        self._wake.set()
        self._syncer.join()
        self._to_compact.put(None)
        self._compactor.join()
        os.close(self._dir_fd)
        self._closed = True
        if self._errors:
            raise StoreError("; ".join(self._errors))
        if self.merge_min_parts is not None:
            try:
                merge_parts(self.run_dir, min_parts=self.merge_min_parts)
            except Exception:  # the small parts are intact: readers still see every row
                log.exception("%s: merging the run's parts failed", self.run_dir)

    # --- the caller's thread ----------------------------------------------------------

    def _open(self) -> _Segment:
        number = self._next
        self._next += 1
        paths = (segment_path(self.run_dir, number, 0), segment_path(self.run_dir, number, 1))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        fds = (os.open(paths[0], flags, 0o644), os.open(paths[1], flags, 0o644))
        segment = _Segment(number, paths, fds, time.monotonic())
        with self._lock:
            self._segment = segment
        return segment

    def _rotate(self) -> None:
        with self._lock:
            if self._segment is not None:
                self._retired.append(self._segment)
                self._segment = None
        self._wake.set()

    # --- the fsync thread -------------------------------------------------------------

    def _sync_loop(self) -> None:
        closing = False
        while not closing:
            self._wake.wait()
            self._wake.clear()
            started = time.monotonic()
            try:
                closing = self._sync_round()
            except Exception as exc:  # keep syncing; the rows are in the kernel's cache
                log.exception("journal fsync round failed")
                self._errors.append(f"{self.run_dir}: journal fsync round failed: {exc}")
                closing = self._closing
            if not closing:
                time.sleep(max(0.0, started + self.SYNC_INTERVAL_S - time.monotonic()))

    def _sync_round(self) -> bool:
        """Fsync what was written since the last round; True once the writer is closing."""
        # One snapshot: every row counted in ``appended`` was written to a
        # retired segment or to the current one's active file, which is
        # swapped here so that the caller's next writes go to the other
        # file and never wait for this fsync.
        to_sync: list[tuple[_Segment, int]] = []
        with self._lock:
            appended, current, closing = self._appended, self._segment, self._closing
            retired, self._retired = self._retired, []
            if current is not None and current.dirty[current.active]:
                to_sync.append((current, current.active))
                current.dirty[current.active] = False
                current.active ^= 1
        for segment in retired:  # nobody writes to these any more
            to_sync += [(segment, side) for side in (0, 1) if segment.dirty[side]]
        try:
            for segment, side in to_sync:
                os.fsync(segment.fds[side])
                if not segment.synced[side]:
                    os.fsync(self._dir_fd)  # the new file's directory entry
                    segment.synced[side] = True
        except OSError as exc:  # the rows are still in the kernel's cache
            self._errors.append(f"{self.run_dir}: journal fsync failed: {exc}")
        self.durable_rows = appended
        if self.on_durable is not None:
            try:
                self.on_durable(appended, time.perf_counter())
            except Exception:  # an observer's bug must not stop the fsyncs
                log.exception("journal on_durable hook failed")
        for segment in retired:
            for fd in segment.fds:
                os.close(fd)  # only this thread closes, after the last fsync
            self._to_compact.put(segment)
        return closing

    # --- the compaction thread --------------------------------------------------------

    def _compact_loop(self) -> None:
        while (segment := self._to_compact.get()) is not None:
            try:
                self._compact(segment)
            except Exception as exc:  # keep the segment; report at close
                message = f"{segment.paths[0]}: compaction failed ({exc}); its rows stay there"
                log.warning("%s", message)
                self._errors.append(message)

    def _compact(self, segment: _Segment) -> None:
        table, notes = decode_segment(b"".join(segment.lines), segment.paths[0].name)
        for note in notes:  # cannot happen for lines written whole; kept for safety
            log.warning("%s", note)
        if table.num_rows:
            write_part(part_path(self.run_dir, segment.number), table)
            fsync_dir(self.run_dir)  # the part is durable before its segment goes
            self.parts_written += 1
        for path in segment.paths:
            path.unlink()
        segment.lines.clear()
