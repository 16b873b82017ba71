"""The decision-first report in the real readers, on the quickstart and on a load sweep.

Headless Chromium renders the HTML (a screenshot, a measuring copy of the page that checks
that no table is wider than the 1280 px window, and a print to PDF with a page bound),
LibreOffice converts the workbook to PDF (pages counted from its ``/Type /Page`` objects),
openpyxl reads the sheet order, page setup and number formats.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from harness.cli import main

from ..conftest import REPO
from .test_export import _Dom, chromium, png_pixels, require

QUICKSTART = REPO / "configs" / "quickstart.yaml"


def _run(config: Path, root: Path, run_id: str) -> None:
    result = CliRunner().invoke(
        main, ["run", str(config), "--out", str(root), "--run-id", run_id, "--no-progress"]
    )
    assert result.exit_code == 0, result.output


def _export(root: Path, dest: Path, *extra: str) -> Path:
    result = CliRunner().invoke(main, ["export", str(root), "--to", str(dest), *extra])
    assert result.exit_code == 0, result.output
    return dest


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quickstart's simulated providers (the optional local model left out: it needs
    the local extra and minutes of CPU), run once."""
    tmp = tmp_path_factory.mktemp("quickstart")
    spec = yaml.safe_load(QUICKSTART.read_text())
    spec["providers"] = [p for p in spec["providers"] if "local" not in p]
    spec["suites"] = [
        str((QUICKSTART.parent / s).resolve()) if isinstance(s, str) else s for s in spec["suites"]
    ]
    config = tmp / "quickstart.yaml"
    config.write_text(yaml.safe_dump(spec))
    root = tmp / "results"
    _run(config, root, "qs-1")
    return root


SWEEP = """
run: {{name: sweep, concurrency: 8}}
providers:
  - {{name: steady, simulate: {{ttft_ms: {ttft}, itl_ms: 2, output_tokens: 8, seed: 1}},
     pricing: {{input_per_mtok: 0.2, output_per_mtok: 0.8}}, tags: {{region: eu}}}}
  - {{name: quick, simulate: {{ttft_ms: 20, itl_ms: 1, output_tokens: 8, seed: 2}},
     pricing: {{input_per_mtok: 1.0, output_per_mtok: 4.0}}, tags: {{region: us}}}}
suites:
  - name: sweep
    kind: latency
    prompts: ["Say hello.", "Count to three."]
    requests: 16
    max_tokens: 16
    load: {{pattern: concurrency, levels: [1, 4]}}
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs of one load-sweep config (a nightly): the second with a slower ``steady``."""
    tmp = tmp_path_factory.mktemp("sweep")
    config, root = tmp / "sweep.yaml", tmp / "results"
    config.write_text(SWEEP.format(ttft=40))
    _run(config, root, "20260101T000000Z-sweep")
    config.write_text(SWEEP.format(ttft=160))
    _run(config, root, "20260102T000000Z-sweep")
    return root


def pdf_pages(path: Path) -> int:
    """Pages of a PDF: its ``/Type /Page`` objects (``/Pages`` is the tree, not counted)."""
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", path.read_bytes()))


MEASURE = """
<script>
(function () {
  var out = [], width = document.documentElement.clientWidth;
  document.querySelectorAll("table").forEach(function (t) {
    if (t.closest("details:not([open])")) { return; }  // collapsed: not on the page
    var box = t.getBoundingClientRect(), holder = t.parentElement;
    out.push({name: t.getAttribute("data-table"), right: box.right, width: box.width,
              scroll: holder.scrollWidth, client: holder.clientWidth});
  });
  var pre = document.createElement("pre");
  pre.id = "measured";
  pre.textContent = JSON.stringify({page: width, doc: document.documentElement.scrollWidth,
                                    tables: out});
  document.body.appendChild(pre);
})();
</script>
"""


def measured(page: Path, tmp_path: Path) -> dict[str, object]:
    """Table widths of ``page`` in Chromium at 1280 px: a copy without the page's CSP (it
    forbids scripts, rightly) and with a script that measures."""
    text = page.read_text(encoding="utf-8")
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    result = chromium(
        "--window-size=1280,2000",
        "--dump-dom",
        probe.resolve().as_uri(),
        profile=tmp_path / "profile-measure",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r'<pre id="measured">(.*?)</pre>', result.stdout, re.S)
    assert match is not None, result.stdout[-2000:]
    data: dict[str, object] = json.loads(match.group(1).replace("&quot;", '"'))
    return data


def check_fits(page: Path, tmp_path: Path) -> list[str]:
    data = measured(page, tmp_path)
    tables = data["tables"]
    assert isinstance(tables, list) and tables
    assert data["doc"] == data["page"], data  # nothing makes the page scroll sideways
    for table in tables:
        assert table["right"] <= data["page"], table  # type: ignore[operator]
        assert table["scroll"] <= table["client"] + 1, table  # not clipped in its box
    return [str(t["name"]) for t in tables]


def section_order(html: str) -> list[str]:
    return re.findall(r'<section class="[^"]*" id="([a-z]+)"', html)


@pytest.mark.slow
def test_quickstart_html_decision_first_fits_and_prints(quickstart: Path, tmp_path: Path) -> None:
    page = _export(
        quickstart, tmp_path / "report.html", "--baseline", "sim-slow", "--candidate", "sim-flaky"
    )
    html = page.read_text(encoding="utf-8")
    assert section_order(html) == ["answer", "charts", "suites", "raw"]
    answer = html[html.index('id="answer"') : html.index('id="charts"')]
    assert "Gate: DO NOT ADOPT sim-flaky" in answer  # 0.79 vs 0.92: not non-inferior
    assert "Pareto front" in answer and "Best overall" in answer
    assert "providers differ in region" in answer and "closed weights" in answer
    assert "TTFT p50 (ms)" in answer and "$ per 1k requests" in answer  # human headers
    # The raw requests come last, collapsed.
    raw = html[html.index('id="raw"') :]
    assert raw.count("<details>") == 2 and 'data-table="requests"' in raw
    dom = _Dom()
    dom.feed(html)
    charts = [c["data-chart"] for c in dom.charts]
    assert charts[0] == "quality-cost" and "latency" in charts
    assert dom.simulated_rows > 0  # simulated stays labelled

    visible = check_fits(page, tmp_path)
    assert visible[:2] == ["leaderboard", "gate"] and "requests" not in visible

    png = tmp_path / "report.png"
    shot = chromium(
        f"--screenshot={png}",
        "--window-size=1280,2000",
        page.resolve().as_uri(),
        profile=tmp_path / "profile-png",
    )
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    width, bpp, rows = png_pixels(png.read_bytes())
    assert width == 1280
    colours = {row[i : i + 3] for row in rows[::8] for i in range(0, len(row), bpp * 4)}
    assert len(colours) > 30  # text, tables and charts, not a blank page

    pdf = tmp_path / "report.pdf"
    printed = chromium(
        f"--print-to-pdf={pdf}",
        "--no-pdf-header-footer",
        page.resolve().as_uri(),
        profile=tmp_path / "profile-pdf",
    )
    assert printed.returncode == 0 and pdf.exists(), printed.stderr[-2000:]
    # The answer, the charts and four suite tables; the raw data is not printed.
    assert 2 <= pdf_pages(pdf) <= 10, pdf_pages(pdf)


@pytest.mark.slow
def test_quickstart_xlsx_opens_on_the_leaderboard_and_prints_in_a_handful_of_pages(
    quickstart: Path, tmp_path: Path
) -> None:
    from openpyxl import load_workbook

    path = _export(
        quickstart, tmp_path / "report.xlsx", "--baseline", "sim-slow", "--candidate", "sim-flaky"
    )
    book = load_workbook(path)
    names = book.sheetnames
    assert names[:4] == ["leaderboard", "gate", "notes", "charts"]
    assert len(book["charts"]._charts) >= 2  # native charts: quality vs cost, latency
    assert names[-1] == "requests" and names[-2] == "summary"
    assert book.active.title == "leaderboard"
    for sheet in book.worksheets:
        assert sheet.page_setup.orientation == "landscape", sheet.title
        assert sheet.page_setup.fitToWidth == 1 and sheet.sheet_properties.pageSetUpPr.fitToPage
    board = book["leaderboard"]
    assert board.freeze_panes == "A2" and board.print_title_rows in ("1:1", "$1:$1")
    head = [c.value for c in board[1]]
    assert "TTFT p50 (ms)" in head and "$ per 1k requests" in head and "errors (%)" in head
    column = {name: i for i, name in enumerate(head)}
    second = board[2]
    assert second[column["errors (%)"]].number_format == "0.0%"
    assert second[column["TTFT p50 (ms)"]].number_format == "0.0"
    assert second[column["$ per 1k requests"]].number_format in ("$0.0000", "$0.000000")
    notes = [str(c.value) for c in book["notes"]["B"] if c.value]
    assert any(n.startswith("answer: Gate: DO NOT ADOPT") for n in notes)

    office = require("libreoffice", "libreoffice-calc-nogui")
    out = tmp_path / "pdf"
    result = subprocess.run(
        [
            office,
            f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pages = pdf_pages(out / "report.pdf")
    # Every sheet fits its width; the 300 raw requests are many rows, so a handful of pages.
    assert len(names) <= pages <= 40, pages


def test_quickstart_markdown_same_order_charts_beside_it(quickstart: Path, tmp_path: Path) -> None:
    path = _export(
        quickstart, tmp_path / "report.md", "--baseline", "sim-slow", "--candidate", "sim-flaky"
    )
    text = path.read_text(encoding="utf-8")
    heads = re.findall(r"^## (.+)$", text, re.M)
    assert heads == ["The answer", "Charts", "Per suite", "Notes", "Raw data"]
    assert "### leaderboard" in text and re.search(r"\|\s+TTFT p50 \(ms\)\s+\|", text)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+\.svg)\)", text)
    assert links and all((tmp_path / link).read_text().startswith("<svg") for link in links)
    assert text.index("### requests") > text.index("## Raw data")


@pytest.mark.slow
def test_a_load_sweep_keeps_its_levels_and_its_history(sweep: Path, tmp_path: Path) -> None:
    page = _export(sweep, tmp_path / "sweep.html")
    html = page.read_text(encoding="utf-8")
    dom = _Dom()
    dom.feed(html)
    charts = [c["data-chart"] for c in dom.charts]
    assert "latency" in charts and "throughput-latency" in charts
    latency = html[html.index('data-chart="latency"') :]
    latency = latency[: latency.index("</svg>")]
    # Every bar group says its level: four groups, no two alike.
    for label in ("steady (simulated) @ c=1", "steady (simulated) @ c=4"):
        assert label in latency, label
    assert "quick (simulated) @ c=4" in latency
    # History: two runs of this config, with diff's change point on the slower TTFT.
    assert "trend-ttft_p50_ms" in charts
    trend = html[html.index('data-chart="trend-ttft_p50_ms"') :]
    trend = trend[: trend.index("</svg>")]
    assert "over 2 runs" in trend and 'class="change-point"' in trend
    assert "steady (simulated): ▲" in trend
    check_fits(page, tmp_path)


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines() if line.strip())


def test_terminal_views_fit_the_terminal(quickstart: Path) -> None:
    runner = CliRunner()
    narrow = {"COLUMNS": "100"}
    summary = runner.invoke(main, ["summarize", str(quickstart)], env=narrow)
    assert summary.exit_code == 0, summary.output
    assert _widest(summary.stdout) <= 100, summary.stdout  # the paired tests too
    tables = summary.stdout.split("Paired comparison")[0]
    # One table per suite, with its kind's columns and human headers with units.
    assert "rag-acme (rag_qa)" in tables and "EM (abstain ok) [95% CI]" in tables
    assert "latency-short (latency)" in tables and "TTFT p50 (ms)" in tables
    assert "quality_ci_low" not in tables and "usd_per_1k_requests" not in tables
    assert "more columns: --wide" in summary.stderr
    wide = runner.invoke(main, ["summarize", str(quickstart), "--wide"], env=narrow)
    assert _widest(wide.stdout.split("Paired comparison")[0]) > 200  # every column
    picked = runner.invoke(
        main, ["summarize", str(quickstart), "--columns", "provider,e2e_p99_ms"], env=narrow
    )
    assert picked.exit_code == 0, picked.output
    head = picked.stdout.splitlines()[3]
    assert head.split() == ["provider", "E2E", "p99", "(ms)"]
    bad = runner.invoke(main, ["summarize", str(quickstart), "--columns", "nope"], env=narrow)
    assert bad.exit_code == 2 and "unknown column nope" in bad.output
    board = runner.invoke(main, ["leaderboard", str(quickstart)], env=narrow)
    assert board.exit_code == 0, board.output
    assert _widest(board.stdout) <= 100, board.stdout
    assert "quality [95% CI]" in board.stdout and "$ per 1k requests" in board.stdout


def test_diff_fits_the_terminal(sweep: Path) -> None:
    result = CliRunner().invoke(
        main, ["diff", str(sweep), "--against", "previous", "--all"], env={"COLUMNS": "100"}
    )
    assert result.exit_code in (0, 1), result.output
    table = result.stdout.split("\n\n", 1)[1]  # below the headline with the run ids
    assert _widest(table) <= 100, result.stdout
    # A sweep's rows say their level, right after the provider.
    assert table.splitlines()[0].split()[:4] == ["provider", "load", "metric", "a"]
    assert "c=1" in table and "c=4" in table


@pytest.mark.slow
def test_a_load_sweep_exports_to_xlsx_and_markdown(sweep: Path, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    book = load_workbook(_export(sweep, tmp_path / "sweep.xlsx"))
    assert book.sheetnames[:3] == ["leaderboard", "notes", "charts"]
    assert book.sheetnames[-1] == "requests" and book.active.title == "leaderboard"
    suite = book["suite sweep (latency)"]
    head = [c.value for c in suite[1]]
    assert head[:3] == ["suite", "provider", "load"]
    assert sorted({r[2].value for r in suite.iter_rows(min_row=2)}) == ["c=1", "c=4"]
    text = _export(sweep, tmp_path / "sweep.md").read_text(encoding="utf-8")
    assert "throughput" in text and (tmp_path / "sweep-throughput-sweep.svg").is_file()
    assert (tmp_path / "sweep-trend-ttft_p50_ms.svg").is_file()

    office = require("libreoffice", "libreoffice-calc-nogui")
    out = tmp_path / "pdf"
    result = subprocess.run(
        [
            office,
            f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out),
            str(tmp_path / "sweep.xlsx"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(book.sheetnames) <= pdf_pages(out / "sweep.pdf") <= 20
