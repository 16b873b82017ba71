"""Assemble a run into a decision-first :class:`~harness.report.export.Report`.

Order (the same in HTML, XLSX and Markdown): (1) the answer: a few sentences (best provider,
Pareto front, the gate's verdict when a baseline and a candidate are given), deprecation and
tag warnings, the leaderboard with its rank ranges, the gate's checks; (2) charts: quality
vs cost with CIs, latency percentiles per provider and load level, throughput vs latency
per level for load sweeps, and the history's trends when the results root holds earlier
runs of the same config; (3) one table per suite with the columns its kind needs, and the
paired quality tests; (4) the raw requests, last.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from harness.report import charts, views
from harness.report.compare import DECISION_COLUMNS
from harness.report.diff import DIFF_ROW_COLUMNS
from harness.report.export import Report, RowStream
from harness.report.fairness import fairness_note
from harness.report.quality import QUALITY_BY_KIND, primary_scores, structured_latency
from harness.report.summary import (
    PRIMARY_QUALITY,
    SUMMARY_COLUMNS,
    UNREAD_BY_SUMMARY,
    load_summary,
    paired_quality,
    unpaired_providers,
)
from harness.report.workloads import chat_turns, prompt_cache_table
from harness.store.dataset import read_batches, redact_text
from harness.store.files import read_manifest
from harness.store.schema import SCHEMA

TAG_WARNINGS = ("region", "residency", "data_residency", "open_weights")
"""Provider tags a decision must not overlook when providers differ in them."""

_PRIMARY = tuple(dict.fromkeys(q.primary for q in QUALITY_BY_KIND.values()))
_MEASURED = ("suite", "load_level", "provider", "warmup", "status", "from_cache")
PART_COLUMNS: dict[str, tuple[str, ...]] = {
    # What each part of the report reads of the rows, besides the summary (which reads
    # every column of SUMMARY_COLUMNS but UNREAD_BY_SUMMARY).
    "leaderboard": DECISION_COLUMNS,  # and the gate
    "suite kinds": ("suite", "suite_kind"),
    "paired quality": ("suite", "suite_kind", "case_id", "provider", "status", "warmup", *_PRIMARY),
    "chat turns": (
        *_MEASURED,
        "suite_kind",
        "turn",
        "turn_score",
        "ttft_s",
        "e2e_s",
        "cost_usd",
        "input_tokens",
        "output_tokens",
    ),
    "prompt cache": (
        *_MEASURED,
        "suite_kind",
        "cache_role",
        "cache_hit",
        "cache_mismatch",
        "cache_expected_tokens",
        "cached_input_tokens",
        "ttft_s",
        "cost_usd",
        "input_tokens",
        "output_tokens",
        "price_input_per_mtok",
        "price_output_per_mtok",
    ),
    "structured vs free form": (
        *_MEASURED,
        "suite_kind",
        "structured_mode",
        "case_id",
        "ttft_s",
        "e2e_s",
        "output_tokens",
    ),
    "capacity": (
        *_MEASURED,
        "started_at",
        "e2e_s",
        "output_tokens",
        "output_tokens_client",
        "cost_usd",
    ),
    "trace notes": ("suite", "load_level", "provider", "warmup", "scheduled_s", "sent_s"),
    # primary scores, unpaired providers, the clients' timing paths (fairness_note)
    "notes": (
        "suite_kind",
        *_PRIMARY,
        "provider",
        "status",
        "warmup",
        "transport",
        "clock",
        "model",
    ),
    "answer": ("simulated",),
    "trends": (*DIFF_ROW_COLUMNS, "started_at"),
}
PARTS_READ = tuple(
    name for name in SUMMARY_COLUMNS if any(name in part for part in PART_COLUMNS.values())
)
"""Every column of :data:`PART_COLUMNS`: all a report reads when its summary is at hand."""
REPORT_COLUMNS = tuple(
    name for name in SUMMARY_COLUMNS if name not in UNREAD_BY_SUMMARY or name in PARTS_READ
)
"""The row columns a report reads: the summary's and those of :data:`PART_COLUMNS`. The
others (the client's node, tool-call and error text, ...) are never read: on a 1M-row run
they cost a second and hundreds of MB."""


def build_report(
    root: Path,
    run_id: str | None = None,
    *,
    baseline: str | None = None,
    candidate: str | None = None,
    gate_options: Mapping[str, Any] | None = None,
    history: bool = True,
) -> Report:
    """The report of one run (the latest by default), decision first.

    ``baseline`` and ``candidate`` (both or neither) add the adoption gate's verdict
    (:func:`harness.report.gate.adoption_gate`, with ``gate_options``). ``history`` adds
    trend charts when ``root`` holds other runs of the same config.

    Raises:
        ValueError: for only one of baseline/candidate, or an unknown provider.
    """
    from harness.report import gate, leaderboard

    if (baseline is None) != (candidate is None):
        raise ValueError("give both --baseline and --candidate, or neither")
    chosen, rows, summary = load_summary(
        root, run_id, columns=REPORT_COLUMNS, cached_columns=PARTS_READ
    )
    manifest = read_manifest(Path(root) / chosen)
    tags = leaderboard.tags_from_manifest(manifest)
    # Only the columns a decision reads: the leaderboard copies every column it is given
    # when it drops the warm-ups.
    decided = rows[[c for c in DECISION_COLUMNS if c in rows.columns]]
    board = leaderboard.leaderboard(decided, tags=tags)
    kinds = views.suite_kinds(rows)
    tables: dict[str, pd.DataFrame] = {"leaderboard": board}
    sections = {"leaderboard": "answer"}
    answer = _answer_lines(board, rows)
    if baseline is not None and candidate is not None:
        result = gate.adoption_gate(decided, baseline, candidate, **dict(gate_options or {}))
        tables["gate"] = pd.DataFrame(
            {
                "check": [c.name for c in result.checks] + result.not_checked,
                "result": ["PASS" if c.passed else "FAIL" for c in result.checks]
                + ["not checked"] * len(result.not_checked),
                "detail": [c.detail for c in result.checks] + [""] * len(result.not_checked),
            }
        )
        sections["gate"] = "answer"
        head = "ADOPT" if result.decision == "adopt" else "DO NOT ADOPT"
        failed = [c.name for c in result.checks if not c.passed]
        why = f" ({', '.join(failed)} failed)" if failed else ""
        answer.insert(
            0, f"Gate: {head} {result.candidate} (candidate) over {result.baseline}{why}."
        )
        answer.insert(1, result.confidence.strip())
        # A failed check's whole reason (a table cell may be cut): e.g. how many cases
        # the quality check would need.
        for i, check in enumerate(c for c in result.checks if not c.passed):
            answer.insert(2 + i, f"Failed, {check.name}: {check.detail}.")
    suite_parts = views.per_suite(summary, kinds)
    for suite, kind, part in suite_parts:
        columns = [c for c in views.columns_for(part, [kind]) if c != "suite"]
        name = f"suite {suite} ({kind})"
        tables[name] = part[["suite", *columns]] if "suite" in part else part[columns]
        sections[name] = "suite"
    pairs = paired_quality(rows)
    if len(pairs):
        tables["paired quality"] = pairs
        sections["paired quality"] = "suite"
    for name, table in (
        ("chat turns", chat_turns(rows)),
        ("prompt cache", prompt_cache_table(rows)),
    ):
        if len(table):
            tables[name] = table
            sections[name] = "suite"
    modes = structured_latency(rows)
    if len(modes):
        tables["structured vs free form"] = modes
        sections["structured vs free form"] = "suite"
    from harness.report.capacity import capacity_notes, capacity_table, trace_notes

    capacity = capacity_table(rows, manifest)
    if len(capacity):
        tables["capacity"] = capacity
        sections["capacity"] = "answer"
    del decided
    tables["summary"] = summary
    sections["summary"] = "raw"
    requests = _request_stream(Path(root), chosen, len(rows))
    sections["requests"] = "raw"  # every column of every row, streamed

    chart_list = _charts(board, suite_parts)
    notes = _notes(manifest, rows) + capacity_notes(capacity) + trace_notes(rows)
    if history:
        from harness.report.trends import trend_charts

        # Only the columns a diff reads stay in memory while earlier runs are read.
        kept = {*DIFF_ROW_COLUMNS, "started_at"}
        rows = rows[[c for c in rows.columns if c in kept]]
        # Arrow's allocator keeps what the run's read freed (~0.4 GB of a 1M-row run) for
        # its next allocations; the earlier runs' reads and summaries, mostly NumPy's,
        # would come on top of it. Given back, it costs ~20 ms.
        pa.default_memory_pool().release_unused()
        trends, trend_notes = trend_charts(Path(root), chosen, manifest, rows, summary)
        chart_list += trends
        notes += trend_notes
    return Report(
        title=f"harness run {chosen}",
        run_ids=[chosen],
        tables={**tables, "requests": requests},
        notes=notes,
        sections=sections,
        headers=views.headers(
            sorted({str(c) for t in tables.values() for c in t.columns} | set(SCHEMA.names))
        ),
        answer=answer,
        warnings=_warnings(manifest, board),
        charts=chart_list,
        full_data={"requests": _where_all_rows(Path(root), chosen)},
    )


def _where_all_rows(root: Path, run_id: str) -> str:
    """What a document that shows some of the requests says of the rest."""
    return (
        f"every row and column is in the Parquet files of {root / run_id}; "
        f"harness export {root} --run {run_id} --to report.csv writes them all to"
        " report-requests.csv (--to report.xlsx: its requests sheet)"
    )


def _request_stream(root: Path, run_id: str, rows: int) -> RowStream:
    """The run's rows, every column, a redacted Arrow batch at a time: CSV and XLSX write
    them all in constant memory, Markdown and HTML read only the rows they show."""

    def tables() -> Iterator[pa.Table]:
        # Small reads, written in batches of 16k rows: the dataset scanner reads 16
        # batches ahead, so 64k-row reads held 1.3 GB for the 1M-row benchmark run, 4k
        # ones ~0.4 GB; and a batch's text is held a few times over while it is built.
        pending: list[pa.Table] = []
        held = 0
        for table in read_batches(root, [run_id], batch_rows=4096):
            pending.append(table)
            held += table.num_rows
            if held >= 16_384:
                yield redact_text(pa.concat_tables(pending).combine_chunks())
                pending, held = [], 0
        if pending:
            yield redact_text(pa.concat_tables(pending).combine_chunks())

    def first(n: int) -> Iterator[pa.Table]:
        # A document shows the first rows only: read them in batches of about that many
        # (the scanner's read-ahead then reads a few thousand rows, not 16 batches of
        # 4k), and redact only those.
        for table in read_batches(root, [run_id], batch_rows=max(1, min(n, 4096))):
            yield redact_text(table)

    return RowStream.of_tables(tables, rows, first)


def _answer_lines(board: pd.DataFrame, rows: pd.DataFrame) -> list[str]:
    lines = []
    scored = board[board["rank"] != "-"] if len(board) else board
    if len(scored):
        weights = ", ".join(f"{k} {v:.2g}" for k, v in board.attrs.get("weights", {}).items())
        first = scored[scored["rank_min"] == 1]
        names = ", ".join(str(p) for p in first["provider"])
        if len(first) == 1 and str(first["rank"].iloc[0]) == "1":
            lines.append(
                f"Best overall: {names} (rank 1 of {len(board)}, score"
                f" {float(first['score'].iloc[0]):.3f}; weights {weights})."
            )
        else:
            lines.append(
                f"No single best: {names} may rank first (their differences are within"
                f" noise; weights {weights})."
            )
    if "pareto" in board and board["pareto"].any():
        front = ", ".join(str(p) for p in board.loc[board["pareto"].astype(bool), "provider"])
        lines.append(
            f"Pareto front (no other provider is better on quality, latency and cost at"
            f" once): {front}."
        )
    simulated = rows["simulated"].fillna(False).astype(bool) if "simulated" in rows else None
    if simulated is not None and len(rows) and bool(simulated.all()):
        lines.append(
            "Every provider here is simulated: the figures test the harness and measure no"
            " real provider."
        )
    return lines


def _warnings(manifest: Mapping[str, Any], board: pd.DataFrame) -> list[str]:
    out = [f"deprecation: {w}" for w in manifest.get("model_warnings") or []]
    for tag in TAG_WARNINGS:
        if tag not in board:
            continue
        values: dict[str, list[str]] = {}
        for provider, value in zip(board["provider"], board[tag], strict=True):
            if value is None or (isinstance(value, float) and value != value):
                continue
            values.setdefault(str(value), []).append(str(provider))
        if tag == "open_weights" and "false" in {v.lower() for v in values}:
            closed = [p for v, ps in values.items() if v.lower() == "false" for p in ps]
            out.append(f"closed weights (open_weights: false): {', '.join(closed)}")
        elif tag != "open_weights" and len(values) > 1:
            spread = "; ".join(f"{v}: {', '.join(ps)}" for v, ps in sorted(values.items()))
            out.append(f"providers differ in {tag}: {spread}")
    return out


def _charts(
    board: pd.DataFrame, suite_parts: Sequence[tuple[str, str, pd.DataFrame]]
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    # The leaderboard's quality (per-case exact_match_abstain) with its interval, not the
    # weighted score.
    named = {f"quality{s}": f"{PRIMARY_QUALITY}{s}" for s in ("", "_ci_low", "_ci_high")}
    quality = board.drop(columns=["score"]).rename(columns=named)
    scatter = charts.quality_cost_chart(quality) if len(board) else None
    if scatter is not None:
        out.append(("quality-cost", scatter))
    latency = [p for p in suite_parts if p[1] == "latency"] or list(suite_parts)
    for suite, _, part in latency:
        title = f"Latency percentiles per provider{' and load level' if _swept(part) else ''}"
        svg = charts.latency_chart(part, f"{title}: {suite}" if suite else title)
        if svg is not None:
            out.append((f"latency-{suite}", svg))
    for suite, _, part in suite_parts:
        svg = charts.throughput_chart(part, f"Throughput vs latency per load level: {suite}")
        if svg is not None:
            out.append((f"throughput-{suite}", svg))
    return out


def _swept(part: pd.DataFrame) -> bool:
    return "load_level" in part and part["load_level"].astype(str).nunique() > 1


def _notes(manifest: Mapping[str, Any], rows: pd.DataFrame) -> list[str]:
    config_hash = str(manifest.get("config_hash", "?"))[:12]
    versions = manifest.get("versions") or {}
    notes = [
        f"config {manifest.get('config_path', '?')} (sha256 {config_hash})",
        "versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"status: {manifest.get('status', '?')}",
    ]
    warning = (manifest.get("clock_health") or {}).get("warning")
    if warning:
        notes.append(f"clock: {warning}")
    if primary_scores(rows).notna().any():
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
    return notes
