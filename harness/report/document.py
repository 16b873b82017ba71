"""The decision-first layout of a :class:`~harness.report.export.Report` with ``sections``
(built by :func:`harness.report.build.build_report`), in HTML, Markdown and XLSX.

Every format has the same content in the same order: the answer (sentences, warnings, the
answer tables: leaderboard, gate), the charts, the per-suite tables, the notes, and the
raw tables last (HTML: collapsed; XLSX: their own sheets, after the rest; Markdown: last).
Headers are :attr:`Report.headers` (with units); each cell is formatted by its column's
name, as everywhere else.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from harness.report.export import (
    _CSS,
    MAX_DOCUMENT_ROWS,
    Report,
    _generated,
    _has_simulated,
    _slug,
    _unique,
    _write_notes,
    html_table,
    markdown_table,
    md_escape,
    save_workbook,
    sheet_names,
    write_table_sheets,
)
from harness.store.files import atomic_write

_PRINT_CSS = """
.answer li { margin: 4px 0; font-size: 15px; }
.warnings li { color: #8a3b00; }
details summary { cursor: pointer; font-weight: 600; margin: 8px 0; }
.decision table, .suite table { width: 100%; min-width: 0; }
.decision th, .suite th { white-space: normal; overflow-wrap: normal; }
.decision td, .suite td { white-space: normal; overflow-wrap: anywhere; }
.decision td.num, .suite td.num { white-space: nowrap; }
.decision td .badge, .suite td .badge { margin-left: 0; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  .scroll { overflow: visible; border: none; }
  table { width: 100%; min-width: 0; font-size: 9px; table-layout: auto; }
  th, td { white-space: normal; overflow-wrap: anywhere; padding: 2px 4px; }
  th { position: static; }
  svg.chart { max-width: 100%; height: auto; page-break-inside: avoid; }
  section.table, figure { page-break-inside: avoid; }
  section.raw { display: none; }
}
@page { size: A4 landscape; margin: 12mm; }
"""


def _section_tables(report: Report, section: str) -> list[str]:
    return [name for name, where in report.sections.items() if where == section]


def html_document(report: Report) -> str:
    """The page: answer, charts, per-suite tables, notes, raw requests (collapsed)."""
    from harness import __version__

    runs = ", ".join(f"<code>{escape(r)}</code>" for r in report.run_ids) or "-"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="harness {escape(__version__)}">',
        f"<title>{escape(report.title)}</title>",
        f"<style>{_CSS}{_PRINT_CSS}</style></head><body>",
        f"<header><h1>{escape(report.title)}</h1>",
        f'<p class="meta">Generated {escape(_generated(report))} · runs: {runs}</p></header>',
    ]
    if _has_simulated(report):
        parts.append(
            '<p class="legend"><span class="badge">simulated</span> rows come from the built-in '
            "simulator: they test the harness and measure no real provider.</p>"
        )
    answer = "".join(f"<li>{escape(line)}</li>" for line in report.answer)
    parts.append(
        f'<section class="decision" id="answer"><h2>The answer</h2><ul class="answer">{answer}</ul>'
    )
    if report.warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in report.warnings)
        parts.append(f'<h3>Warnings</h3><ul class="warnings">{items}</ul>')
    for i, name in enumerate(_section_tables(report, "answer")):
        parts.append(_html_section(report, name, f"answer-{i}", "h3"))
    parts.append("</section>")
    if report.charts:
        figures = "".join(f"<figure>{svg}</figure>" for _, svg in report.charts)
        parts.append(f'<section class="charts" id="charts"><h2>Charts</h2>{figures}</section>')
    suites = _section_tables(report, "suite")
    if suites:
        parts.append('<section class="suite" id="suites"><h2>Per suite</h2>')
        parts += [_html_section(report, n, f"suite-{i}", "h3") for i, n in enumerate(suites)]
        parts.append("</section>")
    if report.notes:
        items = "".join(f"<li>{escape(note)}</li>" for note in report.notes)
        parts.append(f'<section class="notes"><h2>Notes</h2><ul>{items}</ul></section>')
    raw = _section_tables(report, "raw")
    if raw:
        parts.append('<section class="raw" id="raw"><h2>Raw data</h2>')
        for i, name in enumerate(raw):
            table = report.tables[name]
            parts.append(
                f"<details><summary>{escape(name)} ({len(table):,} rows)</summary>"
                f"{html_table(name, table, headers=report.headers)}"
                f"{_left_out_html(report, name)}</details>"
            )
            del i
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def left_out(report: Report, name: str) -> str | None:
    """What a document says under a table it cut at :data:`MAX_DOCUMENT_ROWS` rows: how
    many rows it left out and where they all are (None when it shows every row)."""
    rows = len(report.tables[name])
    if rows <= MAX_DOCUMENT_ROWS:
        return None
    where = report.full_data.get(name) or "CSV, JSON and XLSX exports have them all"
    return (
        f"Rows 1–{MAX_DOCUMENT_ROWS:,} of {rows:,} shown; {rows - MAX_DOCUMENT_ROWS:,} rows"
        f" left out of this document: {where}."
    )


def _left_out_html(report: Report, name: str) -> str:
    text = left_out(report, name)
    return "" if text is None else f'<p class="count left-out">{escape(text)}</p>'


def _html_section(report: Report, name: str, anchor: str, level: str) -> str:
    table = html_table(name, report.tables[name], headers=report.headers)
    return (
        f'<section class="table" id="{anchor}"><{level}>{escape(name)}</{level}>{table}</section>'
    )


def export_markdown_document(report: Report, path: Path) -> Path:
    """Markdown in the same order; each chart is written beside it as ``<stem>-<chart>.svg``
    and linked, since Markdown renderers do not show inline SVG."""
    lines = [f"# {md_escape(report.title)}", ""]
    runs = ", ".join(md_escape(r) for r in report.run_ids) or "-"
    lines += [f"Generated {_generated(report)} · runs: {runs}", ""]
    if _has_simulated(report):
        lines += ["_Simulated providers test the harness and measure no real provider._", ""]
    lines += ["## The answer", ""] + [f"- {md_escape(a)}" for a in report.answer] + [""]
    if report.warnings:
        lines += ["### Warnings", ""] + [f"- {md_escape(w)}" for w in report.warnings] + [""]
    for name in _section_tables(report, "answer"):
        lines += [f"### {md_escape(name)}", "", _md(report, name), ""]
    if report.charts:
        lines += ["## Charts", ""]
        slugs = _unique([_slug(name) for name, _ in report.charts])
        for (name, svg), slug in zip(report.charts, slugs, strict=True):
            chart = path.with_name(f"{path.stem}-{slug}.svg")
            atomic_write(chart, lambda f, s=svg: f.write(s.encode("utf-8")))
            lines += [f"![{md_escape(name)}]({chart.name})", ""]
    suites = _section_tables(report, "suite")
    if suites:
        lines += ["## Per suite", ""]
        for name in suites:
            lines += [f"### {md_escape(name)}", "", _md(report, name), ""]
    if report.notes:
        lines += ["## Notes", ""] + [f"- {md_escape(n)}" for n in report.notes] + [""]
    raw = _section_tables(report, "raw")
    if raw:
        lines += ["## Raw data", ""]
        for name in raw:
            lines += [f"### {md_escape(name)}", "", _md(report, name), ""]
            cut = left_out(report, name)
            lines += [f"_{md_escape(cut)}_", ""] if cut else []
    text = "\n".join(lines)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return path


def _md(report: Report, name: str) -> str:
    return markdown_table(report.tables[name], headers_shown=report.headers)


def export_xlsx_document(report: Report, path: Path) -> Path:
    """Sheets: the answer tables (the workbook opens on the first, the leaderboard), the
    notes (with the answer and warnings), the per-suite tables, then the raw tables."""
    from openpyxl import Workbook  # type: ignore[import-untyped, import-not-found, unused-ignore]

    answer = _section_tables(report, "answer")
    order = [
        *answer,
        "notes",
        "charts",
        *_section_tables(report, "suite"),
        *_section_tables(report, "raw"),
    ]
    order += [n for n in report.tables if n not in order]  # a table without a section
    if {"notes", "charts"} & set(report.tables):
        raise ValueError("a decision report cannot have a table named 'notes' or 'charts'")
    titles = dict(zip(order, sheet_names(order), strict=True))
    book = Workbook()
    book.remove(book.active)
    listing: list[tuple[str, str, int]] = []
    overflow: list[str] = []  # a table longer than a sheet: where it continues
    for name in order:
        sheet = book.create_sheet(title=titles[name])
        if name in ("notes", "charts"):  # written when every sheet is known
            continue
        # A stream's rows are written when the book is saved, in constant memory.
        sheets, more = write_table_sheets(book, sheet, name, report.tables[name], report.headers)
        listing += sheets
        overflow += more
    notes = book[titles["notes"]]
    with_answer = Report(
        title=report.title,
        run_ids=report.run_ids,
        tables=report.tables,
        notes=[
            *(f"answer: {a}" for a in report.answer),
            *(f"warning: {w}" for w in report.warnings),
            *report.notes,
            *overflow,
        ],
        generated_at=report.generated_at,
    )
    _write_notes(notes, with_answer, listing)
    notes.page_setup.orientation = "landscape"
    notes.page_setup.fitToWidth = 1
    notes.page_setup.fitToHeight = 0
    notes.sheet_properties.pageSetUpPr.fitToPage = True
    drawn = _excel_charts(book, book[titles["charts"]], report, titles)
    if not drawn:
        book.remove(book[titles["charts"]])
    book.active = 0
    save_workbook(book, path)
    return path


def _excel_charts(book: Any, sheet: Any, report: Report, titles: dict[str, str]) -> int:
    """Native Excel charts drawn from the sheets' own cells: quality vs cost (leaderboard)
    and the latency percentiles of each latency suite (its rows: provider @ level).
    Returns how many were drawn."""
    from openpyxl.chart import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        BarChart,
        Reference,
        ScatterChart,
        Series,
    )

    sheet["A1"] = "Charts (drawn from the leaderboard and the suite sheets)"
    anchor_row, drawn = 3, 0
    board = report.tables.get("leaderboard")
    if isinstance(board, pd.DataFrame) and {"quality", "usd_per_1k_requests"} <= set(board.columns):
        source = book[titles["leaderboard"]]
        columns = list(board.columns)
        x_col = columns.index("usd_per_1k_requests") + 1
        y_col = columns.index("quality") + 1
        chart = ScatterChart()
        chart.title = "Quality vs cost"
        chart.style = 13
        chart.x_axis.title = "$ per 1k requests"
        chart.y_axis.title = "quality"
        for r in range(2, len(board) + 2):
            series = Series(
                Reference(source, min_col=y_col, min_row=r),
                Reference(source, min_col=x_col, min_row=r),
                title=str(board["provider"].iloc[r - 2]),
            )
            series.marker.symbol = "circle"
            series.graphicalProperties.line.noFill = True
            chart.series.append(series)
        chart.width, chart.height = 22, 11
        sheet.add_chart(chart, f"A{anchor_row}")
        anchor_row += 24
        drawn += 1
    for name, where in report.sections.items():
        table = report.tables[name]
        if not isinstance(table, pd.DataFrame):
            continue
        if where != "suite" or "(latency)" not in name or "provider" not in table:
            continue
        columns = list(table.columns)
        wanted = [
            c for c in ("ttft_p50_ms", "ttft_p95_ms", "e2e_p50_ms", "e2e_p95_ms") if c in columns
        ]
        if not wanted:
            continue
        source = book[titles[name]]
        chart = BarChart()
        chart.title = f"Latency percentiles (ms): {name}"
        chart.y_axis.title = "ms"
        for column in wanted:
            c = columns.index(column) + 1
            data = Reference(source, min_col=c, min_row=1, max_row=len(table) + 1)
            chart.add_data(data, titles_from_data=True)
        label = columns.index("provider") + 1
        chart.set_categories(Reference(source, min_col=label, min_row=2, max_row=len(table) + 1))
        chart.width, chart.height = 22, 11
        sheet.add_chart(chart, f"A{anchor_row}")
        anchor_row += 24
        drawn += 1
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    return drawn
