"""A finished run's summary, kept beside its rows so that no report computes it twice.

A run's comparison table (:func:`harness.report.summary.summarize` of its rows with its
SLOs) costs seconds at a million rows, and every report of a results root needs those
of earlier runs again (the trend charts follow up to 30 of them; the changes between
consecutive runs are diffs of their rows). So the first time a summary (or a trend's
diff of two runs) is computed it is written into the run's directory:

    results/<run_id>/_summary.arrow         the summary, as summarize returned it
    results/<run_id>/_summary-points.arrow  the point values only (no intervals), where
                                            a trend or a history needed no more
    results/<run_id>/_trend-diff.arrow      the report's diff against the run before

They are Arrow IPC files, not Parquet, so that no glob for the rows matches them (a
``read_parquet('results/**/*.parquet')`` in DuckDB would otherwise fail on the first
one), and their names start with ``_``, which pyarrow's dataset discovery skips.

A cached table is used only when its **fingerprint** matches, and a fingerprint exists
only for a finished run (manifest status ``completed`` or ``interrupted``, no journal
rows left to compact). It hashes:

* the name, size and modification time (ns) of every part the run's rows come from, so
  a resumed, merged or rewritten run is a new run to the cache;
* the manifest's bytes (SLOs, status, providers: what summarize reads from it);
* the source of every module of the ``harness`` package and the versions of numpy,
  pandas and pyarrow, so a changed definition never reads an old number.

The fingerprint is taken before the rows are read: if the run changed while it was
read, the table is stored under the earlier fingerprint, which no later reader has.
A cache that cannot be read is a miss and one that cannot be written (a read-only
root) is skipped: the cache never changes a number or fails a command.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

from harness.store.files import MANIFEST, atomic_write, run_files

log = logging.getLogger(__name__)

SUMMARY_FILE = "_summary.arrow"
POINTS_FILE = "_summary-points.arrow"
TREND_DIFF_FILE = "_trend-diff.arrow"
_KEY = b"harness.cache"  # schema metadata: the key (fingerprints) and what was kept with it
_FINISHED = ("completed", "interrupted")


@functools.cache
def code_fingerprint() -> str:
    """A hash of the ``harness`` package's source and of the libraries that compute
    numbers (numpy, pandas, pyarrow): any change to either retires every cached table."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in ("numpy", "pandas", "pyarrow"):
        digest.update(f"{name}={__import__(name).__version__};".encode())
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def run_fingerprint(run_dir: Path) -> str | None:
    """The fingerprint of a finished run's rows and manifest (see the module docstring),
    or None when the run is not finished or cannot be read: nothing is cached then."""
    run_dir = Path(run_dir)
    try:
        manifest = (run_dir / MANIFEST).read_bytes()
        status = json.loads(manifest).get("status")
        files = run_files(run_dir)
        if status not in _FINISHED or files.segments or not files.parts:
            return None
        digest = hashlib.sha256(code_fingerprint().encode())
        digest.update(hashlib.sha256(manifest).digest())
        for part in files.parts:
            stat = part.stat()
            digest.update(f"{part.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    except (OSError, ValueError, AttributeError):
        return None
    return digest.hexdigest()


def read_cached(path: Path, key: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The table stored at ``path`` under exactly ``key`` (and what was stored with it),
    else None."""
    try:
        if not path.is_file():
            return None
        # Read into memory, not mapped: the frame must not outlive a mapping of a file
        # that the next write replaces.
        with pa.OSFile(str(path), "rb") as source:
            table = ipc.open_file(source).read_all()
        meta = json.loads((table.schema.metadata or {}).get(_KEY, b"{}"))
        if meta.get("key") != key:
            return None
        frame: pd.DataFrame = table.to_pandas()
    except (OSError, ValueError, pa.ArrowException) as exc:
        log.debug("cache %s unreadable (%s): computing again", path, exc)
        return None
    return frame, dict(meta.get("extra") or {})


def write_cached(
    path: Path, key: dict[str, Any], frame: pd.DataFrame, extra: dict[str, Any] | None = None
) -> None:
    """Store ``frame`` at ``path`` under ``key`` (atomically); skipped, with a debug log,
    when the frame carries ``attrs`` (the file would not keep them) or the directory is
    not writable."""
    if frame.attrs:
        return
    try:
        table = pa.Table.from_pandas(frame)  # with its index, as the caller made it
        meta = json.dumps({"key": key, "extra": extra or {}}, sort_keys=True).encode()
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _KEY: meta})

        def write(f: Any) -> None:
            with ipc.new_file(f, table.schema) as writer:
                writer.write_table(table)

        atomic_write(path, write)
    except (OSError, ValueError, TypeError, pa.ArrowException) as exc:
        log.debug("cache %s not written (%s)", path, exc)


class CachedSummary(NamedTuple):
    """A run's summary as it was kept, and when its rows (each provider's) began."""

    table: pd.DataFrame
    started: Any  # the earliest started_at of the run's rows (NaT without rows)
    provider_started: dict[str, Any]  # the same per provider (by its name in the rows)


def provider_starts(rows: pd.DataFrame) -> tuple[Any, dict[str, Any]]:
    """The earliest ``started_at`` of ``rows``, and of each provider's rows."""
    if not len(rows):
        return pd.NaT, {}
    per = rows.groupby("provider", sort=True, observed=True)["started_at"].min()
    return rows["started_at"].min(), {str(k): v for k, v in per.items()}


def _iso(value: Any) -> str | None:
    return None if pd.isna(value) else pd.Timestamp(value).isoformat()


def _stamp(value: str | None) -> Any:
    return pd.Timestamp(value) if value else pd.NaT


def cached_summary(
    run_dir: Path, fingerprint: str | None = None, *, points: bool = False
) -> CachedSummary | None:
    """The run's cached summary, when it is current. ``points``: the point values alone
    will do (``summarize(rows, slos, intervals=False)``, its lines in any order); the
    whole summary is taken first when there is one."""
    fingerprint = fingerprint or run_fingerprint(run_dir)
    if fingerprint is None:
        return None
    files: list[tuple[str, dict[str, Any]]] = [(SUMMARY_FILE, {"run": fingerprint})]
    if points:
        files.append((POINTS_FILE, {"run": fingerprint, "points": True}))
    for name, key in files:
        found = read_cached(Path(run_dir) / name, key)
        if found is not None:
            frame, extra = found
            per = {str(k): _stamp(v) for k, v in (extra.get("provider_started_at") or {}).items()}
            return CachedSummary(frame, _stamp(extra.get("started_at")), per)
    return None


def store_summary(
    run_dir: Path,
    fingerprint: str,
    summary: pd.DataFrame,
    started: Any,
    provider_started: Mapping[str, Any] | None = None,
    *,
    points: bool = False,
) -> None:
    """Keep ``summary`` (of the run's rows when it had ``fingerprint``, with its SLOs;
    ``points``: made with no intervals) for later reports."""
    extra = {
        "started_at": _iso(started),
        "provider_started_at": {k: _iso(v) for k, v in (provider_started or {}).items()},
    }
    name, key = (
        (POINTS_FILE, {"run": fingerprint, "points": True})
        if points
        else (SUMMARY_FILE, {"run": fingerprint})
    )
    write_cached(Path(run_dir) / name, key, summary, extra)
