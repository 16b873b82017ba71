"""Assemble the tables of a run into a :class:`~harness.report.export.Report`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.report.export import Report, RowStream
from harness.report.fairness import fairness_note
from harness.report.summary import (
    PRIMARY_QUALITY,
    frame_batches,
    load_summary,
    paired_quality,
    unpaired_providers,
)
from harness.store.files import read_manifest


def build_report(root: Path, run_id: str | None = None) -> Report:
    """Summary first (it is what CSV writes to the main file), then pairs and rows."""
    chosen, rows, summary = load_summary(root, run_id)
    manifest = read_manifest(Path(root) / chosen)
    tables: dict[str, pd.DataFrame | RowStream] = {"summary": summary}
    pairs = paired_quality(rows)
    if len(pairs):
        tables["paired_quality"] = pairs
    # Every column of every row: streamed by the exports that write them all (CSV), read
    # only as far as shown by those that cap them (Markdown, HTML).
    tables["requests"] = RowStream(lambda: frame_batches(root, [chosen]), len(rows))
    config_hash = str(manifest.get("config_hash", "?"))[:12]
    notes = [
        f"config {manifest.get('config_path', '?')} (sha256 {config_hash})",
        f"versions: {manifest.get('versions', {})}",
        f"status: {manifest.get('status', '?')}",
    ]
    warning = (manifest.get("clock_health") or {}).get("warning")
    if warning:
        notes.append(f"clock: {warning}")
    if PRIMARY_QUALITY in rows and rows[PRIMARY_QUALITY].notna().any():
        notes += [
            f"paired comparison leaves out {name}: {why}"
            for name, why in unpaired_providers(rows).items()
        ]
    for name, why in (manifest.get("unavailable_providers") or {}).items():
        notes.append(f"provider {name} unavailable: {why.splitlines()[0]}")
    fairness = fairness_note(rows)
    if fairness:
        notes.append(f"timing: {fairness}")
    if manifest.get("stopped_reason"):
        notes.append(f"stopped: {manifest['stopped_reason']}")
    return Report(title=f"harness run {chosen}", run_ids=[chosen], tables=tables, notes=notes)
