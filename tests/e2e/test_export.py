"""Report exporters, checked by opening what they wrote with real readers.

pandas reads the CSV and JSON, openpyxl and LibreOffice the workbook, headless Chromium the
HTML page (its DOM and a screenshot). LibreOffice and Chromium are Debian packages
(``libreoffice-calc-nogui``, ``chromium``): a test that needs one fails when it is missing,
unless ``HARNESS_SKIP_OFFICE=1`` is set, which skips it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from harness.errors import HarnessError
from harness.report.charts import nice_ticks, report_charts
from harness.report.export import (
    ExportError,
    Report,
    column_kind,
    export,
    formats,
    sheet_names,
)
from harness.report.summary import summarize
from harness.store.parts import PartWriter, read_runs

XSS = "<script>alert(1)</script>"
GENERATED = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)

# --------------------------------------------------------------------------- sample data

# provider, model, simulated, ttft p50 (ms), output tokens/s, $ per request (None: no price),
# exact match on the QA suite
PROVIDERS = [
    ("gpt-4o-mini", "openai/gpt-4o-mini", False, 420.0, 95.0, 0.00031, 0.74),
    ("claude-haiku", "anthropic/claude-3-5-haiku", False, 610.0, 70.0, 0.00112, 0.79),
    ("gemini-flash", "gemini/gemini-2.0-flash", False, 350.0, 160.0, 0.00018, 0.69),
    ("vllm-box", "hosted_vllm/meta-llama/Llama-3.1-8B", False, 95.0, 140.0, None, 0.58),
    ("sim-fast", "sim/fast", True, 40.0, 250.0, None, 0.12),
    ("sim-slow", "sim/slow", True, 900.0, 25.0, None, 0.10),
]
SUITES = ["rag-qa", "latency-short"]


def summary_table() -> pd.DataFrame:
    """Rows shaped like ``summarize()`` output, with quality columns on the QA suite."""
    rows = []
    for suite in SUITES:
        for name, model, simulated, ttft, tps, price, em in PROVIDERS:
            scale = 1.0 if suite == "rag-qa" else 0.6
            requests, errors = (40, 1 if name == "claude-haiku" else 0)
            if name == "sim-slow":
                errors = 4
            e2e = ttft * scale + 120 / tps * 1000
            priced = price is not None
            rows.append(
                {
                    "suite": suite,
                    "provider": f"{name} (simulated)" if simulated else name,
                    "model": model,
                    "requests": requests,
                    "errors": errors,
                    "error_rate": errors / requests,
                    "ttft_p50_ms": ttft * scale,
                    "ttft_p95_ms": ttft * scale * 1.8,
                    "itl_p50_ms": 1000 / tps,
                    "e2e_p50_ms": e2e,
                    "e2e_p95_ms": e2e * 1.4,
                    "output_tps_p50": tps,
                    "output_tokens_mean": 120.0,
                    "cost_usd": price * (requests - errors) if priced else None,
                    "usd_per_1k_requests": price * 1000 if priced else None,
                    "exact_match": em if suite == "rag-qa" else None,
                    "exact_match_ci_low": em - 0.07 if suite == "rag-qa" else None,
                    "exact_match_ci_high": min(1.0, em + 0.07) if suite == "rag-qa" else None,
                }
            )
    return pd.DataFrame(rows)


RESPONSES = [
    "Paris is the capital of France.",
    "Line one\nline two | with a pipe and *stars*",
    '=HYPERLINK("http://example.invalid","click")',
    "naïve café — 東京 ✓ and a bell\x07 character",
    "<img src=x onerror=alert(1)>",
]


def request_rows(root: Path, run_id: str = "run-2026-03-14") -> pd.DataFrame:
    """Per-request rows written to Parquet by the store and read back, as reports get them."""
    writer = PartWriter(root / run_id, run_id)
    start = GENERATED - timedelta(minutes=5)
    index = 0
    for suite in SUITES:
        for name, model, simulated, ttft, tps, price, _ in PROVIDERS:
            for repeat in range(4):
                failed = name == "sim-slow" and repeat == 3
                tokens = 6 + repeat
                ttft_s = ttft / 1000 * (1 + 0.05 * repeat)
                offsets = [round(ttft_s + i / tps, 6) for i in range(tokens)]
                row: dict[str, object] = {
                    "request_index": index,
                    "suite": suite,
                    "suite_kind": "qa" if suite == "rag-qa" else "latency",
                    "case_id": f"case-{repeat}",
                    "repeat": 0,
                    "provider": name,
                    "model": model,
                    "simulated": simulated,
                    "max_tokens": 64,
                    "started_at": start + timedelta(seconds=index * 0.25),
                }
                if failed:
                    row |= {
                        "status": "error",
                        "error_type": "http_500",
                        "error_message": "simulated failure",
                        "http_status": 500,
                    }
                else:
                    row |= {
                        "status": "ok",
                        "first_chunk_s": ttft_s * 0.9,
                        "ttft_s": ttft_s,
                        "e2e_s": offsets[-1] + 0.002,
                        "itl_s": 1 / tps,
                        "tpot_s": 1 / tps,
                        "output_tps": tps,
                        "chunk_offsets_s": offsets,
                        "text_chunks": tokens,
                        "input_tokens": 50 + repeat,
                        "output_tokens": tokens,
                        "cost_usd": price,
                        "finish_reason": "stop",
                        "response_text": RESPONSES[(index + repeat) % len(RESPONSES)],
                    }
                writer.add(row)
                index += 1
    writer.flush()
    return read_runs(root, [run_id]).to_pandas()


def make_report(root: Path, summary: pd.DataFrame | None = None) -> Report:
    table = summary_table() if summary is None else summary
    qa = table[table["suite"] == "rag-qa"].sort_values("exact_match", ascending=False)
    tables = {
        "leaderboard": qa.reset_index(drop=True),
        "summary": table,
        **{f"suite: {s}": table[table["suite"] == s].reset_index(drop=True) for s in SUITES},
        "requests": request_rows(root),
    }
    return Report(
        title="Provider comparison — March <2026> & co",
        run_ids=["run-2026-03-14"],
        tables=tables,
        notes=[
            "Latency percentiles over successful requests only.",
            "sim-* rows come from the built-in simulator.",
            "vllm-box has no price in litellm's table: its cost shows as no price.",
        ],
        generated_at=GENERATED,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    return make_report(tmp_path_factory.mktemp("results"))


# --------------------------------------------------------------------------- registry


def test_unknown_extension_is_an_error_that_lists_the_known_ones(
    report: Report, tmp_path: Path
) -> None:
    assert {".csv", ".json", ".md", ".xlsx", ".html"} <= set(formats())
    with pytest.raises(ExportError) as info:
        export(report, tmp_path / "report.pdf")
    assert isinstance(info.value, HarnessError)
    message = str(info.value)
    assert "'.pdf'" in message
    for extension in (".csv", ".json", ".md", ".xlsx", ".html"):
        assert extension in message
    with pytest.raises(ExportError, match="no extension"):
        export(report, tmp_path / "report")
    with pytest.raises(ExportError, match="no tables"):
        export(Report("empty", [], {}), tmp_path / "x.csv")
    assert not list(tmp_path.iterdir())


def test_column_kinds(report: Report) -> None:
    summary = report.tables["summary"]
    kinds = {c: column_kind(c, summary[c], summary.columns) for c in summary.columns}
    assert kinds["requests"] == kinds["errors"] == "int"
    assert kinds["error_rate"] == "rate"
    assert kinds["ttft_p50_ms"] == kinds["e2e_p95_ms"] == "ms"
    assert kinds["cost_usd"] == kinds["usd_per_1k_requests"] == "usd"
    assert kinds["exact_match"] == kinds["exact_match_ci_low"] == "score"
    assert kinds["provider"] == "text"
    rows = report.tables["requests"]
    assert column_kind("chunk_offsets_s", rows["chunk_offsets_s"]) == "list"
    assert column_kind("started_at", rows["started_at"]) == "timestamp"
    assert column_kind("output_tokens", rows["output_tokens"]) == "int"  # float64 with NaN
    assert column_kind("ttft_s", rows["ttft_s"]) == "seconds"
    assert column_kind("simulated", rows["simulated"]) == "bool"


# --------------------------------------------------------------------------- CSV, JSON


def test_csv_main_table_and_one_file_per_other_table(report: Report, tmp_path: Path) -> None:
    path = export(report, tmp_path / "out.csv")
    assert path == tmp_path / "out.csv"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "out-requests.csv",
        "out-suite_latency-short.csv",
        "out-suite_rag-qa.csv",
        "out-summary.csv",
        "out.csv",
    ]
    leaderboard = pd.read_csv(path)
    expected = report.tables["leaderboard"]
    assert list(leaderboard.columns) == list(expected.columns)
    assert leaderboard["provider"].tolist() == expected["provider"].tolist()
    pd.testing.assert_series_equal(leaderboard["ttft_p50_ms"], expected["ttft_p50_ms"])
    assert leaderboard["usd_per_1k_requests"].isna().tolist() == [
        p in ("vllm-box", "sim-fast (simulated)", "sim-slow (simulated)")
        for p in expected["provider"]
    ]
    assert leaderboard["requests"].dtype.kind == "i"

    rows = pd.read_csv(tmp_path / "out-requests.csv", parse_dates=["started_at"])
    original = report.tables["requests"]
    assert len(rows) == len(original)
    assert str(rows["started_at"].dt.tz) == "UTC"
    assert (rows["started_at"] == original["started_at"]).all()
    first = json.loads(rows["chunk_offsets_s"][0])
    assert first == pytest.approx(list(original["chunk_offsets_s"][0]))
    failed = rows[rows["status"] == "error"]
    assert len(failed) == 2 and failed["chunk_offsets_s"].isna().all()
    assert failed["http_status"].tolist() == [500, 500]
    assert rows["response_text"].dropna().isin(RESPONSES).all()  # newlines, quotes, pipes


def test_json_all_tables_records_iso_timestamps_nulls(report: Report, tmp_path: Path) -> None:
    path = export(report, tmp_path / "report.json")
    text = path.read_text(encoding="utf-8")
    assert "NaN" not in text
    data = json.loads(text)
    assert data["title"] == report.title
    assert data["run_ids"] == ["run-2026-03-14"]
    assert data["generated_at"] == "2026-03-14T09:26:53+00:00"
    assert data["notes"] == report.notes
    assert list(data["tables"]) == list(report.tables)

    summary = pd.DataFrame.from_records(data["tables"]["summary"])
    expected = report.tables["summary"]
    assert list(summary.columns) == list(expected.columns)
    pd.testing.assert_series_equal(summary["e2e_p95_ms"], expected["e2e_p95_ms"])
    latency = data["tables"]["suite: latency-short"]
    assert all(r["exact_match"] is None for r in latency)
    assert data["tables"]["leaderboard"][0]["requests"] == 40  # an int, not 40.0

    rows = pd.read_json(
        io.StringIO(json.dumps(data["tables"]["requests"])),
        orient="records",
        convert_dates=["started_at"],
    )
    original = report.tables["requests"]
    assert (rows["started_at"] == original["started_at"]).all()
    assert rows["chunk_offsets_s"][0] == pytest.approx(list(original["chunk_offsets_s"][0]))
    error_rows = [r for r in data["tables"]["requests"] if r["status"] == "error"]
    assert error_rows[0]["cost_usd"] is None and error_rows[0]["chunk_offsets_s"] is None
    assert error_rows[0]["output_tokens"] is None and error_rows[0]["http_status"] == 500


# --------------------------------------------------------------------------- Markdown


def test_markdown_tables_numbers_and_missing_values(report: Report, tmp_path: Path) -> None:
    text = export(report, tmp_path / "report.md").read_text(encoding="utf-8")
    assert text.startswith("# Provider comparison — March \\<2026\\> & co\n")
    assert "runs: run-2026-03-14" in text
    assert "- vllm-box has no price in litellm's table: its cost shows as no price." in text
    for name in ("leaderboard", "summary", "suite: rag-qa", "requests"):
        assert f"\n## {name}\n" in text
    leaderboard = text.split("## leaderboard\n\n")[1].split("\n\n")[0].splitlines()
    header = [c.strip() for c in leaderboard[0].strip("|").split("|")]
    assert header[:3] == ["suite", "provider", "model"]
    align = leaderboard[1].strip("|").split("|")
    assert align[header.index("provider")].startswith(":")  # text left
    assert align[header.index("ttft_p50_ms")].endswith(":")  # numbers right
    rows = {
        cells[1]: cells
        for cells in ([c.strip() for c in line.strip("|").split("|")] for line in leaderboard[2:])
    }
    assert len(rows) == len(PROVIDERS)
    claude = rows["claude-haiku"]
    assert claude[header.index("error_rate")] == "2.5%"
    assert claude[header.index("ttft_p50_ms")] == "610.0"
    assert claude[header.index("usd_per_1k_requests")] == "$1.12"
    assert claude[header.index("cost_usd")] == "$0.04368"
    assert claude[header.index("exact_match")] == "0.790"
    assert claude[header.index("requests")] == "40"
    assert rows["vllm-box"][header.index("cost_usd")] == "no price"
    assert rows["sim-fast (simulated)"][header.index("usd_per_1k_requests")] == "no price"
    latency = text.split("## suite: latency-short\n\n")[1].split("\n\n")[0]
    last = [c.strip() for c in latency.splitlines()[2].strip("|").split("|")]
    assert last[header.index("exact_match")] == "-"  # no quality on a latency suite
    requests = text.split("## requests\n\n")[1]
    assert "Line one<br>line two \\| with a pipe and \\*stars\\*" in requests
    assert "\\<img src=x onerror=alert(1)\\>" in requests
    assert "<img" not in text.replace("\\<img", "")
    # Each requests row has as many cells as the header: pipes inside cells are escaped.
    lines = [line for line in requests.splitlines() if line.startswith("|")]
    widths = {len(line.replace("\\|", "").split("|")) for line in lines}
    assert len(widths) == 1


# --------------------------------------------------------------------------- XLSX


def test_xlsx_sheets_formats_and_values(report: Report, tmp_path: Path) -> None:
    import openpyxl  # type: ignore[import-untyped, unused-ignore]

    path = export(report, tmp_path / "report.xlsx")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == [
        "leaderboard",
        "summary",
        "suite_ rag-qa",
        "suite_ latency-short",
        "requests",
        "notes",
    ]
    for name in book.sheetnames[:-1]:
        sheet = book[name]
        assert sheet.freeze_panes == "A2"
        assert all(cell.font.bold for cell in sheet[1])
        assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, sheet.max_column).column_letter}" + (
            f"{sheet.max_row}"
        )
    sheet = book["leaderboard"]
    header = [c.value for c in sheet[1]]
    assert header == list(report.tables["leaderboard"].columns)
    col = {name: i + 1 for i, name in enumerate(header)}
    rows = {sheet.cell(r, col["provider"]).value: r for r in range(2, sheet.max_row + 1)}
    r = rows["claude-haiku"]

    def cell(name: str, row: int = r) -> openpyxl.cell.cell.Cell:
        return sheet.cell(row, col[name])

    assert cell("ttft_p50_ms").value == 610.0 and cell("ttft_p50_ms").number_format == "0.0"
    assert cell("error_rate").value == 0.025 and cell("error_rate").number_format == "0.0%"
    assert cell("usd_per_1k_requests").number_format == "$0.0000"
    assert cell("cost_usd").number_format == "$0.000000"  # gemini's total is $0.0072
    assert cell("cost_usd").value == pytest.approx(0.00112 * 39)
    assert cell("requests").value == 40 and cell("requests").number_format == "0"
    assert cell("exact_match").number_format == "0.000"
    assert cell("usd_per_1k_requests", rows["vllm-box"]).value is None  # no price: empty
    assert sheet.column_dimensions["C"].width >= len("anthropic/claude-3-5-haiku")
    assert 8 <= sheet.column_dimensions[cell("requests").column_letter].width <= 20

    requests = book["requests"]
    header = [c.value for c in requests[1]]
    col = {name: i + 1 for i, name in enumerate(header)}
    original = report.tables["requests"]
    started = requests.cell(2, col["started_at"])
    assert started.value.tzinfo is None  # naive UTC: Excel holds no time zone
    assert started.value == original["started_at"][0].tz_convert("UTC").tz_localize(None)
    assert started.number_format == "yyyy-mm-dd hh:mm:ss.000"
    offsets = requests.cell(2, col["chunk_offsets_s"]).value
    assert json.loads(offsets) == pytest.approx(list(original["chunk_offsets_s"][0]))
    texts = [requests.cell(r, col["response_text"]) for r in range(2, requests.max_row + 1)]
    formula_like = [c for c in texts if c.value and str(c.value).startswith("=")]
    assert formula_like and all(c.data_type == "s" for c in formula_like)  # never a formula
    assert any("\ufffd character" in str(c.value) for c in texts)  # control char replaced
    assert requests.max_row == len(original) + 1
    assert requests.cell(2, col["cost_usd"]).number_format == "$0.000000"

    notes = book["notes"]
    values = [c.value for row in notes.iter_rows() for c in row if c.value is not None]
    assert report.title in values and "run-2026-03-14" in values
    assert datetime(2026, 3, 14, 9, 26, 53) in values
    assert all(note in values for note in report.notes)


def test_sheet_names_are_valid_and_unique() -> None:
    names = sheet_names(
        ["a" * 40, "a" * 40, "x/y:z?", "History", "'quoted'", "", "Summary", "summary"]
    )
    assert all(len(n) <= 31 for n in names)
    assert len({n.lower() for n in names}) == len(names)
    assert names[0] == "a" * 31 and names[1] == "a" * 29 + "~2"
    assert names[2] == "x_y_z_" and names[3] == "history_" and names[4] == "quoted"
    assert names[5] == "table" and names[7] == "summary~2"


def require(binary: str, package: str) -> str:
    """The binary's path; a failure (or a skip with HARNESS_SKIP_OFFICE=1) when missing."""
    found = shutil.which(binary)
    if found:
        return found
    message = f"{binary} is not installed (apt-get install -y {package})"
    if os.environ.get("HARNESS_SKIP_OFFICE") == "1":
        pytest.skip(message)
    pytest.fail(message + "; set HARNESS_SKIP_OFFICE=1 to skip")


@pytest.mark.slow
def test_xlsx_opens_in_libreoffice(report: Report, tmp_path: Path) -> None:
    office = require("libreoffice", "libreoffice-calc-nogui")
    path = export(report, tmp_path / "report.xlsx")
    out = tmp_path / "converted"
    # Field sep, quote, UTF-8, from line 1, ..., save cell contents as shown, every sheet.
    options = "44,34,76,1,,0,false,true,true,false,false,-1"
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
    made = sorted(p.name for p in out.iterdir())
    assert "report-leaderboard.csv" in made and "report-requests.csv" in made, made
    assert "report-notes.csv" in made

    leaderboard = pd.read_csv(out / "report-leaderboard.csv", dtype=str, keep_default_na=False)
    assert list(leaderboard.columns) == list(report.tables["leaderboard"].columns)
    claude = leaderboard[leaderboard["provider"] == "claude-haiku"].iloc[0]
    assert claude["error_rate"] == "2.5%"
    assert claude["ttft_p50_ms"] == "610.0"
    assert claude["usd_per_1k_requests"] == "$1.1200"
    assert claude["cost_usd"] == "$0.043680"
    assert claude["exact_match"] == "0.790"
    assert claude["requests"] == "40"
    vllm = leaderboard[leaderboard["provider"] == "vllm-box"].iloc[0]
    assert vllm["cost_usd"] == ""
    requests = pd.read_csv(out / "report-requests.csv", dtype=str, keep_default_na=False)
    assert len(requests) == len(report.tables["requests"])
    expected = report.tables["requests"]["started_at"][0].strftime("%Y-%m-%d %H:%M:%S.000")
    assert requests["started_at"][0] == expected
    assert requests["response_text"].str.startswith("=HYPERLINK").any()  # text, not evaluated


# --------------------------------------------------------------------------- HTML


class _Dom(HTMLParser):
    """Counts what the tests look for in an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: list[dict[str, str | None]] = []
        self.tables: dict[str, int] = {}
        self.simulated_rows = 0
        self.scripts = 0
        self.external: list[str] = []
        self._table: str | None = None
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "svg" and "data-chart" in a:
            self.charts.append(a)
        elif tag == "table":
            self._table = a.get("data-table") or ""
            self.tables[self._table] = 0
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._table is not None:
            self.tables[self._table] += 1
            if "simulated" in (a.get("class") or ""):
                self.simulated_rows += 1
        elif tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if a.get(key) and not str(a[key]).startswith(("#", "data:")):
                self.external.append(f"{tag} {key}={a[key]}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None


def parse(text: str) -> _Dom:
    dom = _Dom()
    dom.feed(text)
    return dom


def test_html_is_self_contained_with_charts_and_tables(report: Report, tmp_path: Path) -> None:
    text = export(report, tmp_path / "report.html").read_text(encoding="utf-8")
    dom = parse(text)
    assert [c["data-chart"] for c in dom.charts] == ["quality-cost", "latency"]
    for chart in dom.charts:
        assert chart["role"] == "img" and chart["aria-label"]
    assert (
        "vllm-box" in str(dom.charts[0]["aria-label"]) or "Not plotted (no price): vllm-box" in text
    )
    assert dom.tables == {name: len(t) for name, t in report.tables.items()}
    simulated = sum(
        int(t["provider"].astype(str).str.contains("simulated|^sim-", regex=True).sum())
        for t in report.tables.values()
    )
    assert dom.simulated_rows == simulated
    assert dom.scripts == 0 and dom.external == []
    assert "url(http" not in text and "@import" not in text and "<link" not in text
    assert "Content-Security-Policy" in text
    assert 'class="num"' in text and "text-align: right" in text
    assert "&lt;2026&gt; &amp; co" in text  # the title is escaped


def test_html_escapes_hostile_text(tmp_path: Path) -> None:
    table = summary_table()
    table.loc[0, "provider"] = XSS
    table.loc[1, "model"] = '"><svg onload=alert(2)>'
    rows = pd.DataFrame({"provider": [XSS], "response_text": ["</td></tr><script>x()</script>"]})
    report = Report(
        title=f"title {XSS}",
        run_ids=["r<1>"],
        tables={"summary": table, "requests": rows},
        notes=[f"note {XSS}"],
        generated_at=GENERATED,
    )
    text = export(report, tmp_path / "x.html").read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert "onload=alert" not in text.replace("onload=alert(2)&gt;", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    dom = parse(text)
    assert dom.scripts == 0
    assert len(dom.charts) == 2 and dom.tables == {"summary": 12, "requests": 1}
    # The same text in Markdown cannot become a tag either.
    md = export(report, tmp_path / "x.md").read_text(encoding="utf-8")
    assert re.search(r"(?<!\\)<(script|/td)", md) is None
    assert "\\<script\\>alert(1)\\</script\\>" in md


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        require("chromium", "chromium")
        raise AssertionError("unreachable")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run(
        [binary, *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit, non-interlaced RGB/RGBA PNG into rows of pixel bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and color in (2, 6) and interlace == 0
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = previous[i], previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, bpp, rows


@pytest.mark.slow
def test_html_renders_in_headless_chromium(report: Report, tmp_path: Path) -> None:
    path = export(report, tmp_path / "report.html")
    url = path.resolve().as_uri()
    result = chromium("--dump-dom", url, profile=tmp_path / "profile-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = parse(result.stdout)
    assert [c["data-chart"] for c in dom.charts] == ["quality-cost", "latency"]
    assert dom.tables == {name: len(t) for name, t in report.tables.items()}
    assert result.stdout.count('class="bar"') == 4 * len(PROVIDERS)
    assert dom.scripts == 0

    png = tmp_path / "report.png"
    shot = chromium(
        f"--screenshot={png}", "--window-size=1280,2000", url, profile=tmp_path / "profile-png"
    )
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    data = png.read_bytes()
    assert len(data) > 10_000
    width, bpp, rows = png_pixels(data)
    assert width == 1280 and len(rows) == 2000
    colours: set[bytes] = set()
    for row in rows[::4]:
        colours.update(row[i : i + 3] for i in range(0, len(row), bpp * 2))
    assert len(colours) > 50  # text, charts and tables, not a blank page
    # The latency bars' colours are on screen (TTFT p95 blue, E2E p95 vermillion).
    assert bytes.fromhex("0072B2") in colours and bytes.fromhex("D55E00") in colours
    keep = os.environ.get("HARNESS_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(png, keep)


# --------------------------------------------------------------------------- charts


def test_charts_fall_back_to_what_the_columns_allow() -> None:
    table = summary_table()
    qa = table[table["suite"] == "rag-qa"]
    assert [c.split('data-chart="')[1].split('"')[0] for c in report_charts(qa)] == [
        "quality-cost",
        "latency",
    ]
    unpriced = qa.assign(cost_usd=None, usd_per_1k_requests=None)
    assert 'data-chart="quality-ttft"' in report_charts(unpriced)[0]
    plain = qa.drop(columns=["exact_match", "exact_match_ci_low", "exact_match_ci_high"])
    charts = report_charts(plain)
    assert 'data-chart="ttft-speed"' in charts[0] and 'data-chart="latency"' in charts[1]
    assert report_charts(pd.DataFrame({"provider": ["a"]})) == []
    # Two suites: labels say which.
    assert "gpt-4o-mini · latency-short" in report_charts(table)[1]
    # Missing latency values are drawn as n/a, not as zero bars.
    gaps = plain.assign(ttft_p95_ms=[None] * len(plain))
    assert gaps.shape[0] == 6 and report_charts(gaps)[1].count(">n/a<") == 6


def test_nice_ticks() -> None:
    assert nice_ticks(0, 1) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(0, 950) == [0, 250, 500, 750, 1000]
    ticks = nice_ticks(0.43, 0.87)
    assert ticks[0] <= 0.43 and ticks[-1] >= 0.87 and 3 <= len(ticks) <= 8
    assert nice_ticks(5, 5)[0] < 5 < nice_ticks(5, 5)[-1]
    assert all(math.isfinite(t) for t in nice_ticks(1e-7, 3e-7))


# --------------------------------------------------------------------------- real pipeline


def test_exports_the_real_summary_of_stored_rows(tmp_path: Path) -> None:
    rows = request_rows(tmp_path / "results")
    table = summarize(rows)
    report = Report("real", ["run-2026-03-14"], {"summary": table, "requests": rows})
    for extension in formats():
        written = export(report, tmp_path / f"out{extension}")
        assert written.stat().st_size > 200
    again = pd.read_csv(tmp_path / "out.csv")
    assert len(again) == len(table)
    html = (tmp_path / "out.html").read_text(encoding="utf-8")
    assert 'data-chart="ttft-speed"' in html and 'data-chart="latency"' in html
    md = (tmp_path / "out.md").read_text(encoding="utf-8")
    assert "sim-fast (simulated)" in md and "no price" in md
    with (tmp_path / "out-requests.csv").open(newline="", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == len(rows)


def test_empty_tables_and_awkward_names_in_every_format(tmp_path: Path) -> None:
    import openpyxl  # type: ignore[import-untyped, unused-ignore]

    report = Report(
        title="edge cases",
        run_ids=[],
        tables={
            "notes": pd.DataFrame({"provider": pd.Series([], dtype=str), "ttft_p50_ms": []}),
            "a/b:c?" + "x" * 40: pd.DataFrame({"n": [1, 2]}),
            "no columns": pd.DataFrame(),
        },
        generated_at=datetime(2026, 1, 1, 12, 0),  # naive: taken as it is
    )
    for extension in (".CSV", ".json", ".md", ".xlsx", ".html"):
        assert export(report, tmp_path / "sub" / f"edge{extension}").exists()
    book = openpyxl.load_workbook(tmp_path / "sub" / "edge.xlsx")
    assert book.sheetnames == ["notes", "a_b_c_" + "x" * 25, "no columns", "notes~2"]
    assert book["notes"].freeze_panes == "A2" and book["notes"].max_row == 1
    assert pd.read_csv(tmp_path / "sub" / "edge.CSV").empty
    data = json.loads((tmp_path / "sub" / "edge.json").read_text())
    assert data["tables"]["no columns"] == [] and data["generated_at"] == "2026-01-01T12:00:00"
    md = (tmp_path / "sub" / "edge.md").read_text()
    assert "_(no rows)_" in md and "_(no columns)_" in md
    dom = parse((tmp_path / "sub" / "edge.html").read_text())
    assert dom.charts == [] and set(dom.tables.values()) == {0, 2}


@pytest.mark.slow
def test_hostile_text_stays_text_in_chromium(tmp_path: Path) -> None:
    table = summary_table()
    table.loc[0, "provider"] = XSS
    report = Report(f"t {XSS}", ["r"], {"summary": table}, [XSS], GENERATED)
    path = export(report, tmp_path / "x.html")
    result = chromium("--dump-dom", path.resolve().as_uri(), profile=tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "<script" not in result.stdout.lower()
    assert result.stdout.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # h1, note, cell, svg
