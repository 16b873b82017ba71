"""The report reads only the row columns its parts read, and writes its tables a column
at a time: the same report, byte for byte, as every column read and every cell formatted
on its own.

A run of every suite kind against the simulator (warm-ups, two load levels, a trace
replay, a capacity search, free-form twins of a structured suite), twice, so that the
report has a trend.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.report import build, capacity, gate, leaderboard, trends, views
from harness.report.export import (
    RowStream,
    export,
    format_value,
    format_values,
    html_table,
    markdown_table,
)
from harness.report.quality import structured_latency
from harness.report.summary import SUMMARY_COLUMNS, load_run, paired_quality, run_slos, summarize
from harness.report.workloads import chat_turns, prompt_cache_table
from harness.store.files import read_manifest

from ..conftest import REPO

SUITES = REPO / "suites"
CONFIG = f"""
run: {{name: columns, concurrency: 8, warmup_requests: 1}}
providers:
  - name: sim-a
    simulate: {{ttft_ms: 20, itl_ms: 1, output_tokens: 16, jitter: 0.2, seed: 1,
                abstain_rate: 0.1, accuracy: 0.7, prefix_cache: true, cache_ttft_ms: 5,
                error_rate: 0.05}}
    pricing: {{input_per_mtok: 1.0, output_per_mtok: 4.0, cached_input_per_mtok: 0.25}}
    tags: {{region: eu, open_weights: false}}
  - name: sim-b
    simulate: {{ttft_ms: 30, itl_ms: 1, output_tokens: 16, jitter: 0.2, seed: 2,
                invalid_json_rate: 0.2, accuracy: 0.8, max_concurrency: 2}}
    pricing: {{input_per_mtok: 0.5, output_per_mtok: 2.0}}
    tags: {{region: us}}
suites:
  - name: rag
    kind: rag_qa
    dataset: {SUITES / "rag_qa" / "acme_kb.jsonl"}
    max_tokens: 16
    limit: 16
  - {SUITES / "chat" / "support.yaml"}
  - {SUITES / "prompt_cache" / "shared_prefix.yaml"}
  - name: tools
    kind: tool_call
    dataset: {SUITES / "tool_call" / "northwind_tools.jsonl"}
    tools_file: {SUITES / "tool_call" / "northwind_tools.json"}
    max_tokens: 64
    limit: 12
  - name: extract
    kind: structured
    dataset: {SUITES / "structured" / "northwind_extract.jsonl"}
    max_tokens: 128
    mode: json_schema
    compare_free_form: true
    limit: 8
  - name: sweep
    kind: latency
    prompts: [one two three]
    max_tokens: 4
    requests: 8
    load: {{pattern: concurrency, levels: [1, 4], warmup: 1}}
  - name: replay
    kind: latency
    load: {{pattern: trace, trace: "{REPO / "tests" / "data" / "traces" / "sample.jsonl"}", speed: 4.0}}
  - name: search
    kind: latency
    prompts: [one two three four]
    max_tokens: 2
    requests: 8
    load: {{pattern: capacity, arrivals: rate, slo: {{ttft_ms: 150}}, start: 4,
            max_rate: 16, goodput: 0.5, resolution: 0.5}}
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("columns")
    config = tmp / "columns.yaml"
    config.write_text(CONFIG)
    for run_id in ("cols-1", "cols-2"):
        result = CliRunner().invoke(
            main,
            [
                "run",
                str(config),
                "--out",
                str(tmp / "results"),
                "--run-id",
                run_id,
                "--no-progress",
            ],
        )
        assert result.exit_code == 0, result.output
    return tmp / "results"


def _same(a: Any, b: Any) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        assert a.attrs == b.attrs
    elif isinstance(a, tuple | list) and a and isinstance(a[0], pd.DataFrame | list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    else:
        assert a == b


def _size(value: Any) -> int:
    if isinstance(value, tuple):  # trend charts and their notes
        return len(value[0])
    if hasattr(value, "checks"):  # the gate's result
        return len(value.checks)
    return len(value)


def test_each_part_reads_only_its_columns(root: Path) -> None:
    """Every part of the report gives the same result from the columns PART_COLUMNS
    names for it as from every column the summary could read, and says something on this
    run (an empty table on both sides would prove nothing)."""
    _, every = load_run(root, "cols-2", SUMMARY_COLUMNS)
    manifest = read_manifest(root / "cols-2")
    board = leaderboard.leaderboard(every)
    summary = summarize(every, run_slos(root, "cols-2"))
    parts: dict[str, Callable[[pd.DataFrame], Any]] = {
        "leaderboard": lambda rows: (
            leaderboard.leaderboard(rows, tags=leaderboard.tags_from_manifest(manifest)),
            gate.adoption_gate(rows, "sim-a", "sim-b", max_p95_latency_ms=500).checks,
        ),
        "suite kinds": views.suite_kinds,
        "paired quality": paired_quality,
        "chat turns": chat_turns,
        "prompt cache": prompt_cache_table,
        "structured vs free form": structured_latency,
        "capacity": lambda rows: capacity.capacity_table(rows, manifest),
        "trace notes": capacity.trace_notes,
        "notes": lambda rows: build._notes(manifest, rows),
        "answer": lambda rows: build._answer_lines(board, rows),
        "trends": lambda rows: trends.trend_charts(root, "cols-2", manifest, rows, summary),
    }
    assert set(parts) == set(build.PART_COLUMNS)  # a new part is tested here too
    for name, part in parts.items():
        columns = [c for c in build.PART_COLUMNS[name] if c in every.columns]
        assert len(columns) == len(set(build.PART_COLUMNS[name])), name
        full, narrow = part(every), part(every[columns])
        assert _size(full) > 0, name
        _same(full, narrow)
    assert set(build.REPORT_COLUMNS) < set(SUMMARY_COLUMNS)
    # Nothing of a tool call's text, a node or an error's text is read.
    assert not {"tool_calls", "node", "actor", "chat_history", "tool_error"} & set(
        build.REPORT_COLUMNS
    )


def test_the_summary_of_the_report_columns_is_the_summary_of_every_column(root: Path) -> None:
    _, every = load_run(root, "cols-2", SUMMARY_COLUMNS)
    _, some = load_run(root, "cols-2", build.REPORT_COLUMNS)
    assert len(some.columns) < len(every.columns)
    slos = run_slos(root, "cols-2")
    pd.testing.assert_frame_equal(summarize(every, slos), summarize(some, slos), check_exact=True)


def test_the_report_shows_the_first_rows_of_the_stream(root: Path, tmp_path: Path) -> None:
    """``first`` reads the rows a document shows in small batches: the same rows as the
    stream's own batches, read once however often a document asks."""
    report = build.build_report(root, "cols-2")
    stream = report.tables["requests"]
    assert isinstance(stream, RowStream) and stream.first is not None
    # 100 rows: batches of 100, more than one of them when the rows are split in parts.
    head = stream.head(100)
    assert stream.head(100) is head
    assert stream.tables is not None
    whole = pd.concat([t.to_pandas() for t in stream.tables()], ignore_index=True)
    assert len(whole) == len(stream) > 100
    slow = RowStream.of_tables(stream.tables, len(stream))  # no first: the whole batches
    pd.testing.assert_frame_equal(head, slow.head(100), check_exact=True)
    # (Types are the shown rows' own: a count without a missing value there is int64.)
    pd.testing.assert_frame_equal(head, whole.iloc[:100], check_exact=True, check_dtype=False)
    # ... and the documents' request tables are those of a stream without it.
    assert html_table("requests", stream, 100) == html_table("requests", slow, 100)
    assert markdown_table(stream, 100) == markdown_table(slow, 100)


def test_format_values_is_format_value_for_every_cell() -> None:
    """The column formatter gives format_value's text for every kind of cell, including
    those it hands on (NaN, infinity, bools in a number column, text in a count)."""
    values: list[Any] = [
        1234.5,
        -0.04368,
        0.0,
        -0.0,
        1e-9,
        12.0,
        9.999,
        math.nan,
        math.inf,
        -math.inf,
        3,
        -12_345_678,
        10**400,
        True,
        False,
        None,
        pd.NA,
        pd.NaT,
        "12",
        "abc",
        "",
        np.float64(2.5),
        np.int64(7),
        np.bool_(True),
        np.array([1.5, 2.0]),
        np.array([1, 2], dtype=np.int64),
        np.array([1.0, math.nan]),
        np.array(["a", "b"], dtype=object),
        [1, 2],
        {"a": 1},
        pd.Timestamp("2026-01-02 03:04:05.678901", tz="UTC"),
        datetime(2026, 1, 2, tzinfo=UTC),
    ]
    kinds = ["int", "ms", "seconds", "rate", "usd", "score", "p", "float", "bool"]
    for kind in [*kinds, "timestamp", "list", "text"]:
        assert format_values(values, kind) == [format_value(v, kind) for v in values], kind  # type: ignore[arg-type]
    # By hand: ms with one decimal and thousands, a rate as %, dollars below $1 to 4
    # significant digits, a float >= 10 with one decimal, else 3 significant digits.
    assert format_values([1234.5, math.nan, 3], "ms") == ["1,234.5", None, "3.0"]
    assert format_values([0.1234, 1], "rate") == ["12.3%", "100.0%"]
    assert format_values([0.04368, 2.5], "usd") == ["$0.04368", "$2.50"]
    assert format_values([123.45, 1.2345], "float") == ["123.5", "1.23"]
    assert format_values([np.array([0.5, 1.25])], "list") == ["[0.5,1.25]"]


def test_html_and_markdown_cells_by_hand() -> None:
    """A missing cost reads "no price" on a successful row and "-" on a failed one; a
    simulated provider gets its badge and its row the class; a long text is cut with
    its whole text (to 2,000 characters) as the title."""
    long = "x" * 205
    frame = pd.DataFrame(
        {
            "provider": ["a (simulated)", "b"],
            "status": ["ok", "error"],
            "cost_usd": [math.nan, math.nan],
            "ttft_s": [0.1234, math.nan],
            "note": [long, "a|b"],
        }
    )
    html = html_table("t", frame)
    cut = "x" * 199 + "…"
    assert html == (
        '<p class="count">2 rows</p><div class="scroll"><table data-table="t"><thead><tr>'
        '<th scope="col">provider</th><th scope="col">status</th>'
        '<th class="num" scope="col">cost_usd</th><th class="num" scope="col">ttft_s</th>'
        '<th scope="col">note</th></tr></thead><tbody>'
        '<tr class="simulated"><td class="text">a<span class="badge">simulated</span></td>'
        '<td class="text">ok</td><td class="num missing">no price</td>'
        f'<td class="num">0.123</td><td class="text" title="{long}">{cut}</td></tr>'
        '<tr><td class="text">b</td><td class="text">error</td>'
        '<td class="num missing">-</td><td class="num missing">-</td>'
        '<td class="text">a|b</td></tr></tbody></table></div>'
    )
    # Columns as wide as their widest cell or their header + 2; numbers to the right.
    text = markdown_table(frame)
    assert text.splitlines()[2:] == [
        f"| a (simulated) | ok       |   no price |    0.123 | {cut} |",
        f"| b             | error    |          - |        - | a\\|b{' ' * 196} |",
    ]


def test_the_report_is_the_same_from_every_column(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole document, HTML and Markdown, with the gate and the trends: built from the
    report's columns it is the document that every column the summary reads gives."""
    fixed = datetime(2026, 1, 1, tzinfo=UTC)
    pages: dict[str, list[str]] = {}
    # Cached: the summary and trend diffs kept by the runs (harness/report/summary_cache.py)
    # and only PARTS_READ read; uncached: every kept table removed first.
    for columns, cached in (
        (build.REPORT_COLUMNS, True),
        (build.REPORT_COLUMNS, False),
        (SUMMARY_COLUMNS, False),
    ):
        if not cached:
            for kept in [*root.glob("*/_summary*.arrow"), *root.glob("*/_trend-diff.arrow")]:
                kept.unlink()
        monkeypatch.setattr(build, "REPORT_COLUMNS", columns)
        report = build.build_report(root, "cols-2", baseline="sim-a", candidate="sim-b")
        report.generated_at = fixed
        out = tmp_path / f"{len(columns)}-{cached}"
        pages[out.name] = [export(report, out / name).read_text() for name in ("r.html", "r.md")]
    assert (root / "cols-2" / "_summary.arrow").is_file()
    (warm, narrow, wide) = pages.values()
    assert narrow == wide
    assert warm == narrow
    html = narrow[0]
    for table in ("paired quality", "chat turns", "prompt cache", "structured vs free form"):
        assert f"<h3>{table}</h3>" in html
    assert "<h3>capacity</h3>" in html and "<h3>gate</h3>" in html and 'data-chart="trend-' in html
