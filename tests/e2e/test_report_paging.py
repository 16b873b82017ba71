"""The HTML and Markdown reports cap the request table and say what they left out and
where every row is; the data formats keep every row. The report's trend charts are the
ones the whole-runs computation (``harness.report.history.trend_charts``) draws."""

from __future__ import annotations

import csv
import re
from html import escape
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.report.export import MAX_DOCUMENT_ROWS

from .test_export import _Dom

# Two zero-delay providers, 300 requests each: 600 rows, more than a document shows.
CONFIG = """
run: {{name: paging, concurrency: 32}}
providers:
  - {{name: fast, simulate: {{ttft_ms: 0, itl_ms: 0, output_tokens: 4, seed: 1}},
     pricing: {{input_per_mtok: 0.1, output_per_mtok: 0.4}}}}
  - {{name: slow, simulate: {{ttft_ms: {ttft}, itl_ms: 0, output_tokens: 4, seed: 2}},
     pricing: {{input_per_mtok: 0.2, output_per_mtok: 0.8}}}}
suites:
  - {{name: lat, kind: latency, prompts: ["Say hello.", "Count to three."],
     requests: 300, max_tokens: 8}}
"""


def _run(root: Path, config: Path, run_id: str) -> None:
    result = CliRunner().invoke(
        main, ["run", str(config), "--out", str(root), "--run-id", run_id, "--no-progress"]
    )
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs of one config (a nightly pair), the second with a slower ``slow``."""
    tmp = tmp_path_factory.mktemp("paging")
    root, config = tmp / "results", tmp / "paging.yaml"
    config.write_text(CONFIG.format(ttft=5))
    _run(root, config, "night-1")
    config.write_text(CONFIG.format(ttft=60))
    _run(root, config, "night-2")
    return root


def _export(root: Path, dest: Path) -> Path:
    result = CliRunner().invoke(main, ["export", str(root), "--run", "night-2", "--to", str(dest)])
    assert result.exit_code == 0, result.output
    return dest


def _left_out(root: Path) -> str:
    # 600 rows (2 providers x 300 requests), 500 shown: 600 - 500 = 100 left out.
    return (
        "Rows 1–500 of 600 shown; 100 rows left out of this document: every row and column"
        f" is in the Parquet files of {root / 'night-2'}; harness export {root} --run night-2"
        " --to report.csv writes them all to report-requests.csv (--to report.xlsx: its"
        " requests sheet)."
    )


def test_html_caps_the_request_table_and_says_where_the_rest_is(runs: Path, tmp_path: Path) -> None:
    assert MAX_DOCUMENT_ROWS == 500  # the figures below are worked out for 500
    html = _export(runs, tmp_path / "r.html").read_text(encoding="utf-8")
    table = html[html.index('<table data-table="requests">') :]
    table = table[: table.index("</table>")]
    body = table[table.index("<tbody>") :]
    assert body.count("<tr") == 500
    raw = html[html.index('<section class="raw"') :]
    assert escape(_left_out(runs)) in raw
    # Said once, under the requests table only (the summary has 2 lines, none left out).
    assert raw.count("left out of this document") == 1
    dom = _Dom()
    dom.feed(html)  # still a well-formed page


def test_markdown_caps_the_request_table_alike(runs: Path, tmp_path: Path) -> None:
    text = _export(runs, tmp_path / "r.md").read_text(encoding="utf-8")
    section = text[text.index("### requests") :]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + 500  # header and alignment lines, then the rows shown
    found = re.search(r"^_(Rows 1–500 of 600 shown;.*)_$", section, re.M)
    assert found is not None, section[-2000:]
    assert found.group(1).replace("\\", "") == _left_out(runs)  # md_escape's backslashes


def test_csv_keeps_every_row(runs: Path, tmp_path: Path) -> None:
    path = _export(runs, tmp_path / "r.csv")
    requests = path.with_name("r-requests.csv")
    with requests.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 600
    assert {r["provider"] for r in rows} == {"fast", "slow"}


def test_trend_charts_are_those_of_the_whole_runs(runs: Path) -> None:
    from harness.report import history, trends
    from harness.report.summary import load_summary
    from harness.store.files import read_manifest

    manifest = read_manifest(runs / "night-2")
    want_charts, want_notes = history.trend_charts(runs, "night-2", manifest)
    _, rows, summary = load_summary(runs, "night-2")
    got_charts, got_notes = trends.trend_charts(runs, "night-2", manifest, rows, summary)
    assert [name for name, _ in got_charts] == [name for name, _ in want_charts]
    assert got_charts == want_charts
    assert got_notes == want_notes
    # The slower second run is a change point (60 ms against 5 ms TTFT).
    ttft = dict(got_charts)["trend-ttft_p50_ms"]
    assert "over 2 runs" in ttft and 'class="change-point"' in ttft
