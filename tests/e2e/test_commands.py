"""The smaller commands as a user runs them: dataset import, SQuAD scoring, export."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pandas as pd
from click.testing import CliRunner

from harness.cli import main

from ..conftest import TEST_DATA

SQUAD = TEST_DATA / "squad-v2"


def test_score_squad_reproduces_the_official_script() -> None:
    result = CliRunner().invoke(
        main,
        [
            "score",
            "squad",
            str(SQUAD / "dev-v2.0-half.json"),
            str(SQUAD / "dev-half-predictions.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    official = json.loads((SQUAD / "dev-half-predictions.official-scores.json").read_text())
    assert json.loads(result.stdout) == official


def test_datasets_import_converts_and_reports_bad_lines(tmp_path: Path) -> None:
    dest = tmp_path / "squad.jsonl"
    result = CliRunner().invoke(
        main, ["datasets", "import", "auto", str(SQUAD / "sample-200.jsonl"), str(dest)]
    )
    assert result.exit_code == 0, result.output
    assert "200 cases" in result.stdout
    assert len(dest.read_text().splitlines()) == 200
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "contexts": ["c"], "references": []}\n{not json\n')
    failed = CliRunner().invoke(
        main, ["datasets", "import", "jsonl", str(bad), str(tmp_path / "o.jsonl")]
    )
    assert failed.exit_code == 2
    assert f"{bad}:2" in failed.stderr


def test_export_every_format_from_a_real_run(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        providers:
          - {{name: a, simulate: {{ttft_ms: 5, itl_ms: 1, output_tokens: 4}}}}
          - {{name: b, simulate: {{ttft_ms: 5, itl_ms: 1, output_tokens: 4, abstain_rate: 1}}}}
        suites:
          - {{name: qa, kind: rag_qa, dataset: "{SQUAD / "sample-200.jsonl"}", limit: 20}}
        """
    )
    root = tmp_path / "out"
    runner = CliRunner()
    assert (
        runner.invoke(main, ["run", str(config), "--out", str(root), "--no-progress"]).exit_code
        == 0
    )
    for ext in ("csv", "xlsx", "md", "html", "json"):
        result = runner.invoke(main, ["export", str(root), "--to", str(tmp_path / f"r.{ext}")])
        assert result.exit_code == 0, result.output
    summary = pd.read_csv(tmp_path / "r.csv")
    assert set(summary["provider"]) == {"a (simulated)", "b (simulated)"}
    book = openpyxl.load_workbook(tmp_path / "r.xlsx")
    assert {"summary", "requests"} <= set(book.sheetnames)
    assert book["requests"].max_row == 41
    html = (tmp_path / "r.html").read_text()
    assert "data-chart" in html
    assert "simulated" in html
    bad = runner.invoke(main, ["export", str(root), "--to", str(tmp_path / "r.docx")])
    assert bad.exit_code != 0
    assert ".xlsx" in bad.output
