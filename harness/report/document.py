"""The decision-first layout of a :class:`~harness.report.export.Report` with ``sections``
(built by :func:`harness.report.build.build_report`), in HTML, Markdown and XLSX.

Every format has the same content in the same order: the answer (sentences, warnings, the
answer tables: leaderboard, gate), the charts, the per-suite tables, the notes, and the
raw tables last (HTML: collapsed; XLSX: their own sheets, after the rest; Markdown: last).
Headers are :attr:`Report.headers` (with units); each cell is formatted by its column's
name, as everywhere else.
"""

from __future__ import annotations

import io
from html import escape
from pathlib import Path

from harness.report.export import (
    _CSS,
    Report,
    _generated,
    _has_simulated,
    _slug,
    _unique,
    _write_notes,
    _write_sheet,
    html_table,
    markdown_table,
    md_escape,
    sheet_names,
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
                f"{html_table(name, table, headers=report.headers)}</details>"
            )
            del i
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


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
    order = [*answer, "notes", *_section_tables(report, "suite"), *_section_tables(report, "raw")]
    order += [n for n in report.tables if n not in order]  # a table without a section
    if "notes" in report.tables:
        raise ValueError("a decision report cannot have a table named 'notes'")
    titles = dict(zip(order, sheet_names(order), strict=True))
    book = Workbook()
    book.remove(book.active)
    listing = []
    for name in order:
        sheet = book.create_sheet(title=titles[name])
        if name == "notes":  # written last, when every sheet is known
            continue
        table = report.tables[name]
        _write_sheet(sheet, table, report.headers)
        listing.append((name, titles[name], len(table)))
    notes = book[titles["notes"]]
    with_answer = Report(
        title=report.title,
        run_ids=report.run_ids,
        tables=report.tables,
        notes=[
            *(f"answer: {a}" for a in report.answer),
            *(f"warning: {w}" for w in report.warnings),
            *report.notes,
        ],
        generated_at=report.generated_at,
    )
    _write_notes(notes, with_answer, listing)
    notes.page_setup.orientation = "landscape"
    notes.page_setup.fitToWidth = 1
    notes.page_setup.fitToHeight = 0
    notes.sheet_properties.pageSetUpPr.fitToPage = True
    book.active = 0
    buffer = io.BytesIO()
    book.save(buffer)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return path
