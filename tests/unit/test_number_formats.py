"""Every printed number is formatted by its meaning, whatever else is in its column.

The bug this guards: tabulate re-parsed the summary's already formatted cost strings and
applied the table's ``floatfmt=".1f"`` to a column that was all numbers, so two priced
providers at $0.0167 and $0.0362 per 1k requests both printed ``0.0``; one ``no price``
cell in the same column made it a text column and the numbers came out right. So each
format is run over an all-priced, a none-priced and a mixed table, and the expected
strings are written out by hand.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from harness.report.export import Report, export, format_value, html_table, markdown_table
from harness.report.summary import compact, render, render_pairs
from harness.report.text import render_text

NAN = math.nan
COSTS = {
    "all priced": [0.0167, 0.0362],
    "none priced": [NAN, NAN],
    "mixed": [0.0167, NAN],
}
SHOWN = {
    "all priced": ["$0.0167", "$0.0362"],
    "none priced": ["no price", "no price"],
    "mixed": ["$0.0167", "no price"],
}


def summary(costs: list[float]) -> pd.DataFrame:
    """A two-provider summary with the columns the compact table shows."""
    return pd.DataFrame(
        {
            "suite": ["s", "s"],
            "load_level": ["-", "-"],
            "provider": ["a", "b"],
            "requests": [40, 8],
            "error_rate": [0.125, 0.0],
            "ttft_p50_ms": [612.345, 48.0],
            "ttft_p50_ms_ci_low": [600.04, 45.55],
            "ttft_p50_ms_ci_high": [625.0, 51.25],
            "e2e_p50_ms": [1234.56, 80.0],
            "output_tps_p50": [123.456, 7.891],
            "goodput": [0.875, 1.0],
            "usd_per_1k_requests": costs,
        }
    )


def column(text: str, header: str, *, markdown: bool) -> list[str]:
    """The cells under ``header`` of a printed table (terminal or GitHub pipe table)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if markdown:
        rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
        head, body = rows[0], rows[2:]
        return [row[head.index(header)] for row in body]
    # "simple": columns are separated by the dashes under the header.
    dashes = lines[1]
    spans, start = [], None
    for i, char in enumerate(dashes + " "):
        if char == "-" and start is None:
            start = i
        elif char != "-" and start is not None:
            spans.append((start, i))
            start = None
    names = [lines[0][a:b].strip() for a, b in spans]
    a, b = spans[names.index(header)]
    return [line[a:b].strip() for line in lines[2:]]


# --------------------------------------------------------------------------- one value


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        # Dollars: cents from $1 up; below, 4 significant digits, trailing zeros dropped.
        (0.0167, "usd", "$0.0167"),
        (0.0362, "usd", "$0.0362"),
        (0.04368, "usd", "$0.04368"),
        (0.5, "usd", "$0.50"),
        (0.00001234, "usd", "$0.00001234"),
        (1.125, "usd", "$1.12"),  # banker's rounding of the binary 1.125: cents
        (1234.5, "usd", "$1,234.50"),
        (-0.0012, "usd", "-$0.0012"),  # a cost change keeps its sign in front
        (0.0, "usd", "$0.00"),
        (612.345, "ms", "612.3"),
        (1234.56, "ms", "1,234.6"),
        (0.125, "rate", "12.5%"),
        (1.0, "rate", "100.0%"),
        (1047576, "int", "1,047,576"),
        (40.0, "int", "40"),
        (0.000123456, "p", "0.000123"),
        (0.5, "p", "0.5"),
        (123.456, "float", "123.5"),
        (7.891, "float", "7.89"),
        (NAN, "usd", None),
    ],
)
def test_one_value_per_kind(value: float, kind: str, expected: str | None) -> None:
    assert format_value(value, kind) == expected  # type: ignore[arg-type]


# --------------------------------------------------------------------------- terminal


@pytest.mark.parametrize("case", list(COSTS))
@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_cost_column_prints_dollars_whatever_the_other_cells(case: str, fmt: str) -> None:
    text = render(summary(COSTS[case]), fmt)
    assert column(text, "$/1k req", markdown=fmt == "markdown") == SHOWN[case]
    # The other columns do not depend on the cost column either.
    assert column(text, "errors", markdown=fmt == "markdown") == ["12.5%", "0.0%"]
    assert column(text, "TTFT p50 ms", markdown=fmt == "markdown") == ["612.3", "48.0"]
    assert column(text, "TTFT p50 95% CI", markdown=fmt == "markdown") == [
        "600.0–625.0",
        "45.5–51.2",  # 45.55 and 51.25 are stored just below: 45.5, 51.2
    ]
    assert column(text, "E2E p50 ms", markdown=fmt == "markdown") == ["1,234.6", "80.0"]
    assert column(text, "tok/s p50", markdown=fmt == "markdown") == ["123.5", "7.89"]
    assert column(text, "goodput", markdown=fmt == "markdown") == ["87.5%", "100.0%"]
    assert column(text, "n", markdown=fmt == "markdown") == ["40", "8"]


def test_numbers_are_right_aligned_and_text_left() -> None:
    text = render(summary(COSTS["all priced"]), "markdown")
    head, align = (
        [c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()[:2]
    )
    assert align[head.index("provider")].startswith(":")
    assert align[head.index("$/1k req")].endswith(":")
    lines = render(summary(COSTS["mixed"]), "table").splitlines()
    # "no price" and "$0.0167" end in the same column (right-aligned).
    assert lines[2].rstrip().endswith("$0.0167") and lines[3].rstrip().endswith("no price")


def test_compact_cells_are_text_so_no_later_printer_reformats_them() -> None:
    shown = compact(summary(COSTS["all priced"]))
    assert shown["$/1k req"].tolist() == ["$0.0167", "$0.0362"]
    assert all(isinstance(v, str) for v in shown.to_numpy().ravel())


@pytest.mark.parametrize("case", list(COSTS))
def test_data_formats_keep_raw_numbers(case: str) -> None:
    table = summary(COSTS[case])
    raw = pd.read_csv(io.StringIO(render(table, "csv")))["usd_per_1k_requests"].tolist()
    records = json.loads(render(table, "json"))
    for expected, from_csv, record in zip(COSTS[case], raw, records, strict=True):
        if math.isnan(expected):
            assert math.isnan(from_csv) and record["usd_per_1k_requests"] is None
        else:
            assert from_csv == expected and record["usd_per_1k_requests"] == expected


def test_pairs_print_p_values_with_significant_digits() -> None:
    pairs = pd.DataFrame(
        {
            "suite": ["s"],
            "metric": ["exact_match_abstain"],
            "a": ["x"],
            "b": ["y"],
            "n": [40],
            "diff": [0.125],
            "diff_ci_low": [0.05],
            "diff_ci_high": [0.2],
            "p_bootstrap": [0.000123456],
            "p_mcnemar": [0.03125],
            "verdict": ["x better"],
        }
    )
    text = render_pairs(pairs, "markdown").split("\n\n", 1)[1]
    assert column(text, "p (bootstrap)", markdown=True) == ["0.000123"]
    assert column(text, "p (McNemar)", markdown=True) == ["0.0312"]  # 0.03125 → 3 digits
    assert column(text, "A - B [95% CI]", markdown=True) == ["+0.125 [+0.050, +0.200]"]
    assert column(text, "n", markdown=True) == ["40"]


def test_render_text_formats_a_generic_frame_by_column_names() -> None:
    board = pd.DataFrame(
        {
            "provider": ["a", "b"],
            "ttft_p50_ms": [612.345, 48.0],
            "usd_per_1k_requests": [0.0167, 0.0362],
            "error_rate": [0.125, 0.0],
            "pareto": [True, False],
        }
    )
    text = render_text(board, "table")
    assert column(text, "usd_per_1k_requests", markdown=False) == ["$0.0167", "$0.0362"]
    assert column(text, "ttft_p50_ms", markdown=False) == ["612.3", "48.0"]
    assert column(text, "error_rate", markdown=False) == ["12.5%", "0.0%"]
    assert column(text, "pareto", markdown=False) == ["yes", "no"]


# --------------------------------------------------------------------------- documents


@pytest.mark.parametrize("case", list(COSTS))
def test_markdown_and_html_documents(case: str) -> None:
    table = summary(COSTS[case])
    cells = column(markdown_table(table), "usd_per_1k_requests", markdown=True)
    assert cells == SHOWN[case]
    html = html_table("summary", table)
    for shown in SHOWN[case]:
        assert f">{shown}</td>" in html
    assert html.count("no price") == SHOWN[case].count("no price")


@pytest.mark.parametrize("case", list(COSTS))
def test_xlsx_json_csv_files_keep_raw_numbers(case: str, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    report = Report(title="t", run_ids=["r"], tables={"summary": summary(COSTS[case])})
    sheet = load_workbook(export(report, tmp_path / "r.xlsx"))["summary"]
    header = [c.value for c in sheet[1]]
    col = header.index("usd_per_1k_requests") + 1
    stored = [sheet.cell(row=r, column=col).value for r in (2, 3)]
    data = json.loads(export(report, tmp_path / "r.json").read_text())
    from_json = [line["usd_per_1k_requests"] for line in data["tables"]["summary"]]
    csv_text = export(report, tmp_path / "r.csv").read_text()
    from_csv = pd.read_csv(io.StringIO(csv_text))["usd_per_1k_requests"].tolist()
    for expected, cell, record, written in zip(
        COSTS[case], stored, from_json, from_csv, strict=True
    ):
        if math.isnan(expected):
            assert cell is None and record is None and math.isnan(written)
        else:
            assert cell == expected and record == expected and written == expected
