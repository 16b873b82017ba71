"""A run's rows exported as a stream (:class:`RowStream`): CSV and XLSX written a whole Arrow
batch at a time (``harness.report.streamed``), checked cell by cell against the writers that
go row by row, and opened with real readers (``csv``, pandas, openpyxl, LibreOffice).

The rows are written by the store (``PartWriter``) and read back in batches of 2 rows, so
every table below spans several batches.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from harness.report import export as export_module
from harness.report.export import Report, RowStream, export
from harness.store.dataset import read_batches, redact_text
from harness.store.parts import PartWriter, read_runs
from harness.store.schema import SCHEMA

from .test_export import require

KEY = "sk-proj-" + "Ab3De6Gh9Jk2Mn5Pq8St1Vw4Yz7Bc0Ef" * 2 + "T3BlbkFJ"  # a fake, real-shaped key
RUN = "stream-1"
TEXT = 'a,b "quoted"\nsecond line'

ROWS: list[dict[str, Any]] = [
    {
        "request_index": 0,
        "suite": "s",
        "provider": "p",
        "simulated": True,
        "status": "ok",
        "max_tokens": 64,
        "attempts": 1,
        "started_at": datetime(2026, 3, 14, 9, 21, 53, 12, tzinfo=UTC),
        "ttft_s": 0.25,
        "e2e_s": 1.0,
        "output_tps": 1e-7,
        "cost_usd": 0.000012,
        "chunk_offsets_s": [0.25, 0.5, 1.0],
        "chunk_tokens": [1, 2],
        "text_chunks": 3,
        "response_text": TEXT,
        "references": ["ref one", f"key {KEY}"],
    },
    {
        "request_index": 1,
        "suite": "s",
        "provider": "p",
        "simulated": False,
        "status": "error",
        "http_status": 500,
        "error_message": "boom",
        "started_at": datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        "ttft_s": float("nan"),
        "retry_wait_s": float("inf"),
        "response_text": f"=HYPERLINK(1) {KEY}",
    },
    *(
        {
            "request_index": i,
            "suite": "s",
            "provider": "q",
            "simulated": False,
            "status": "ok",
            "attempts": 2,
            "started_at": datetime(2026, 3, 14, 9, 22, i, tzinfo=UTC),
            "ttft_s": 0.1 * i,
            "e2e_s": 0.5 * i,
            "cost_usd": 0.001 * i,
            "chunk_offsets_s": [0.1 * i],
            "response_text": "café <b>&</b> \x07bell",
        }
        for i in range(2, 7)
    ),
]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("results")
    writer = PartWriter(root / RUN, RUN)
    for row in ROWS:
        writer.add(dict(row))
    writer.flush()
    return root


def stream(root: Path) -> RowStream:
    """The rows as the export reads them (build.py): redacted Arrow batches, here of 2 rows."""
    return RowStream.of_tables(
        lambda: (redact_text(t) for t in read_batches(root, [RUN], batch_rows=2)), len(ROWS)
    )


def frame(root: Path) -> pd.DataFrame:
    """The same rows as a DataFrame, as the row-by-row writers get them."""
    return read_runs(root, [RUN]).to_pandas()


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def same_cell(a: str, b: str) -> bool:
    """The same content: equal text, equal numbers (``1e-07``/``1e-7``, ``1.0``/``1``), or
    equal JSON lists."""
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except ValueError:
        pass
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return False


def test_streamed_csv_holds_what_the_row_writer_writes(root: Path, tmp_path: Path) -> None:
    export(Report("rows", [RUN], {"requests": frame(root)}), tmp_path / "rows.csv")
    export(Report("stream", [RUN], {"requests": stream(root)}), tmp_path / "stream.csv")
    by_rows, streamed = csv_rows(tmp_path / "rows.csv"), csv_rows(tmp_path / "stream.csv")
    assert list(streamed[0]) == list(SCHEMA.names) == list(by_rows[0])  # every column, in order
    assert len(streamed) == len(ROWS)
    for i, (a, b) in enumerate(zip(by_rows, streamed, strict=True)):
        for column in SCHEMA.names:
            if column == "references":  # the stream scrubs text inside lists too
                continue
            assert same_cell(a[column], b[column]), (i, column, a[column], b[column])

    first, second = streamed[0], streamed[1]
    # Worked by hand from ROWS:
    assert first["started_at"] == "2026-03-14T09:21:53.000012+00:00"
    assert second["started_at"] == "1969-12-31T23:59:59.999999+00:00"  # before the epoch
    assert first["ttft_s"] == "0.25" and first["e2e_s"] == "1.0"  # a whole float keeps .0
    assert float(first["output_tps"]) == 1e-7 and float(first["cost_usd"]) == 0.000012
    assert first["chunk_offsets_s"] == "[0.25,0.5,1.0]" and first["chunk_tokens"] == "[1,2]"
    assert first["simulated"] == "True" and second["simulated"] == "False"
    assert first["max_tokens"] == "64" and first["http_status"] == "" and first["attempts"] == "1"
    assert second["http_status"] == "500"
    assert second["ttft_s"] == "" and second["retry_wait_s"] == ""  # NaN and inf: empty
    assert second["chunk_offsets_s"] == "" and second["attempts"] == ""  # None: empty
    assert first["response_text"] == TEXT  # comma, quotes and newline survive quoting
    # Secrets: redacted in text cells and inside lists.
    text = (tmp_path / "stream.csv").read_text(encoding="utf-8")
    assert KEY not in text
    assert json.loads(first["references"])[0] == "ref one"
    assert "sk-proj" not in json.loads(first["references"])[1]

    # pandas reads it typed: timestamps in UTC, whole-second floats as floats, a bare \r
    # inside a text cell did not end the row.
    read = pd.read_csv(tmp_path / "stream.csv", parse_dates=["started_at"])
    assert len(read) == len(ROWS) and str(read["started_at"].dt.tz) == "UTC"
    assert read["e2e_s"].dtype.kind == "f" and read["max_tokens"].dtype.kind == "f"
    assert read["request_index"].tolist() == list(range(len(ROWS)))


def test_a_carriage_return_in_text_is_quoted(tmp_path: Path) -> None:
    """Python's csv writer leaves a bare \\r unquoted, and readers end the row there."""
    table = pa.table({"error_message": ["boom\rcarriage", "plain"], "n": [1, 2]})
    rows = RowStream.of_tables(lambda: iter([table]), 2)
    path = export(Report("cr", [], {"rows": rows}), tmp_path / "cr.csv")
    assert path.read_bytes() == b'error_message,n\n"boom\rcarriage",1\nplain,2\n'
    assert pd.read_csv(path)["error_message"].tolist() == ["boom\rcarriage", "plain"]


def _sheet(path: Path, name: str = "requests") -> Any:
    import openpyxl  # type: ignore[import-untyped, unused-ignore]

    return openpyxl.load_workbook(path)[name]


def test_streamed_xlsx_holds_what_the_cell_writer_writes(root: Path, tmp_path: Path) -> None:
    export(Report("rows", [RUN], {"requests": frame(root)}), tmp_path / "rows.xlsx")
    export(Report("stream", [RUN], {"requests": stream(root)}), tmp_path / "stream.xlsx")
    by_rows, streamed = _sheet(tmp_path / "rows.xlsx"), _sheet(tmp_path / "stream.xlsx")
    assert streamed.max_row == len(ROWS) + 1 and streamed.max_column == len(SCHEMA.names)
    assert [c.value for c in streamed[1]] == list(SCHEMA.names)
    assert all(c.font.bold for c in streamed[1]) and streamed.freeze_panes == "A2"
    assert streamed.auto_filter.ref == by_rows.auto_filter.ref == "A1:DC8"  # 107 columns, 7+1
    header = [c.value for c in streamed[1]]
    # An integer column with a missing value is float64 in pandas, so the cell writer
    # formats its counts as floats ("0.00"); the stream keeps them integers ("0").
    rows = frame(root)
    floated = {
        f.name for f in SCHEMA if pa.types.is_integer(f.type) and rows[f.name].dtype.kind == "f"
    }
    assert {"attempts", "http_status"} <= floated
    for r in range(2, len(ROWS) + 2):
        for c, column in enumerate(header, start=1):
            a, b = by_rows.cell(r, c), streamed.cell(r, c)
            if column == "references":
                continue
            if column in floated:
                assert b.value == a.value, (r, column)
                if b.value is not None:
                    assert b.number_format == "0", (r, column)
                continue
            if isinstance(a.value, float) and isinstance(b.value, int | float):
                # openpyxl writes 16 significant digits, the stream the shortest exact text
                assert b.value == pytest.approx(a.value, rel=1e-15), (r, column)
            else:
                assert a.value == b.value, (r, column, a.value, b.value)
            if a.value is not None:
                assert a.number_format == b.number_format, (r, column)
                assert a.data_type == b.data_type, (r, column)
    for column in set(header) - floated:
        letter = streamed.cell(1, header.index(column) + 1).column_letter
        assert (
            streamed.column_dimensions[letter].width == by_rows.column_dimensions[letter].width
        ), column
    col = {name: i + 1 for i, name in enumerate(header)}
    # Worked by hand: 09:21:53.000012 is shown to the millisecond (openpyxl reads ms).
    started = streamed.cell(2, col["started_at"])
    assert started.value == datetime(2026, 3, 14, 9, 21, 53)
    assert started.number_format == "yyyy-mm-dd hh:mm:ss.000"
    assert streamed.cell(3, col["started_at"]).value == datetime(1970, 1, 1)  # .999999 rounds up
    assert streamed.cell(2, col["cost_usd"]).number_format == "$0.000000"  # sub-cent costs
    assert streamed.cell(2, col["simulated"]).value is True
    assert streamed.cell(2, col["response_text"]).value == TEXT
    assert json.loads(streamed.cell(2, col["chunk_offsets_s"]).value) == [0.25, 0.5, 1.0]
    formula = streamed.cell(3, col["response_text"])
    assert formula.data_type == "s" and formula.value.startswith("=HYPERLINK")  # text only
    assert streamed.cell(4, col["response_text"]).value == "café <b>&</b> \ufffdbell"
    assert streamed.cell(3, col["ttft_s"]).value is None  # NaN: empty
    import zipfile

    with zipfile.ZipFile(tmp_path / "stream.xlsx") as book:
        assert not any(KEY in book.read(n).decode("utf-8", "replace") for n in book.namelist())


def test_a_table_longer_than_a_sheet_continues_on_further_sheets(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import openpyxl  # type: ignore[import-untyped, unused-ignore]

    # Excel's 1,048,576 rows made 4 so that 7 rows need three sheets of 3 rows below the
    # header: 3 + 3 + 1. A DataFrame too long for a sheet goes the same way.
    monkeypatch.setattr(export_module, "EXCEL_MAX_ROWS", 4)
    small = pd.DataFrame({"n": [1, 2, 3, 4, 5], "ttft_p50_ms": [1.5, 2.5, 3.5, 4.5, 5.5]})
    report = Report("long", [RUN], {"requests": stream(root), "small": small})
    path = export(report, tmp_path / "long.xlsx")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == [
        "requests",
        "requests (2)",
        "requests (3)",
        "small",
        "small (2)",
        "notes",
    ]
    rows = [
        [book[name].cell(r, 2).value for r in range(2, book[name].max_row + 1)]
        for name in book.sheetnames[:3]
    ]
    assert rows == [[0, 1, 2], [3, 4, 5], [6]]  # request_index: every row, once, in order
    assert [book[n].auto_filter.ref for n in book.sheetnames[:3]] == ["A1:DC4", "A1:DC4", "A1:DC2"]
    assert all(book[n].cell(1, 1).value == "run_id" for n in book.sheetnames[:3])
    assert [[c.value for c in r] for r in book["small (2)"].iter_rows()] == [
        ["n", "ttft_p50_ms"],
        [4, 4.5],
        [5, 5.5],
    ]
    assert book["small"].cell(2, 2).number_format == "0.0"
    notes = [str(c.value) for c in book["notes"]["B"] if c.value]
    assert any("continued on sheets requests (2), requests (3)" in n for n in notes)
    assert "requests (3): table 'requests', 1 rows" in notes
    err = capsys.readouterr().err
    assert "table 'requests' has 7 rows" in err and "table 'small' has 5 rows" in err


@pytest.mark.slow
def test_streamed_xlsx_opens_in_libreoffice(root: Path, tmp_path: Path) -> None:
    office = require("libreoffice", "libreoffice-calc-nogui")
    path = export(Report("stream", [RUN], {"requests": stream(root)}), tmp_path / "s.xlsx")
    out = tmp_path / "converted"
    options = "44,34,76,1,,0,false,true,true,false,false,-1"  # as test_export: every sheet
    result = subprocess.run(
        [
            office,
            f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}",
            "--headless",
            "--convert-to",
            f"csv:Text - txt - csv (StarCalc):{options}",
            "--outdir",
            str(out),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = pd.read_csv(out / "s-requests.csv", dtype=str, keep_default_na=False)
    assert list(rows.columns) == list(SCHEMA.names) and len(rows) == len(ROWS)
    assert rows["started_at"][0] == "2026-03-14 09:21:53.000"
    assert rows["response_text"][0] == TEXT
    assert rows["ttft_s"][0] == "0.250" and rows["e2e_s"][0] == "1.000"  # format 0.000
    assert rows["cost_usd"][2] == "$0.002000" and rows["simulated"][0] == "TRUE"
    assert math.isclose(float(rows["request_index"][6]), 6)
