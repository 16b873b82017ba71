"""The results root, as real runs leave it, read by pandas, DuckDB and Polars (the snippets of
the README's Results section): the same columns, the same kinds of types, the same rows.

The root holds three runs against simulated providers (the project's simulator, started by
``harness run``): one merged into a single part (``flush_s`` small enough for 16+ parts,
which the writer merges when the run closes), one interrupted with Ctrl-C and resumed
(parts from two attempts, the cancelled rows replaced), and one with a RAG QA suite (list
columns of text, scores). Then ``harness export`` writes a run's every row to CSV and XLSX.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.store.parts import read_runs
from harness.store.schema import SCHEMA

from ..conftest import REPO

FAST = "{ttft_ms: 1, itl_ms: 0, output_tokens: 6, seed: 1}"
SLOW = "{ttft_ms: 40, itl_ms: 5, output_tokens: 8, seed: 2}"
MERGED_REQUESTS = 240
RESUMED_REQUESTS = 60


def _config(tmp: Path, name: str, text: str) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    return path


def _run(config: Path, root: Path, *run: str) -> None:
    """``run``: ``--run-id ID`` or ``--resume ID``."""
    result = CliRunner().invoke(
        main, ["run", str(config), "--out", str(root), *run, "--no-progress"]
    )
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("readers")
    root = tmp / "results"
    merged = _config(
        tmp,
        "merged",
        f"""run: {{name: merged, concurrency: 4, flush_s: 0.005}}
providers:
  - {{name: quick, simulate: {FAST}, pricing: {{input_per_mtok: 1, output_per_mtok: 2}}}}
suites:
  - {{name: lat, kind: latency, prompts: ["a b", "c d"], requests: {MERGED_REQUESTS},
     max_tokens: 8}}
""",
    )
    _run(merged, root, "--run-id", "r1-merged")
    resumed = _config(
        tmp,
        "resumed",
        f"""run: {{name: resumed, concurrency: 2, flush_s: 0.05}}
providers:
  - {{name: steady, simulate: {SLOW}}}
suites:
  - {{name: lat, kind: latency, prompts: ["e f"], requests: {RESUMED_REQUESTS}, max_tokens: 8}}
""",
    )
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "harness.cli", "run", str(resumed)),
            *("--out", str(root), "--run-id", "r2-resumed", "--no-progress"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # some rows stored, then Ctrl-C
        parts = list((root / "r2-resumed").glob("part-*.parquet"))
        if parts and len(read_runs(root, ["r2-resumed"])) >= 10:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    _run(resumed, root, "--resume", "r2-resumed")
    rag = _config(
        tmp,
        "rag",
        f"""run: {{name: rag, concurrency: 8}}
providers:
  - {{name: reader, simulate: {{ttft_ms: 1, itl_ms: 0, output_tokens: 12, accuracy: 0.7,
     seed: 3}}}}
suites:
  - {{name: qa, kind: rag_qa, dataset: {REPO}/suites/rag_qa/acme_kb.jsonl, max_tokens: 32}}
""",
    )
    _run(rag, root, "--run-id", "r3-rag")
    return root


def _kind(t: str) -> str:
    """A type's family, spelled the same for the three readers."""
    t = t.lower()
    for family, marks in (
        ("list", ("list", "[]", "object")),  # pandas holds lists (and text) as objects
        ("timestamp", ("timestamp", "datetime")),
        ("bool", ("bool",)),
        ("int", ("int",)),
        ("float", ("float", "double")),
        ("text", ("string", "str", "varchar", "utf8")),
    ):
        if any(m in t for m in marks):
            return family
    return t


def test_the_runs_left_the_layouts_they_should(root: Path) -> None:
    merged = sorted(p.name for p in (root / "r1-merged").glob("part-*.parquet"))
    assert len(merged) == 1 and merged[0].count("-") == 2, merged  # part-<first>-<last>
    manifest = json.loads((root / "r2-resumed" / "_manifest.json").read_text())
    assert len(manifest["resumes"]) == 1 and manifest["status"] == "completed"
    assert len(list((root / "r2-resumed").glob("part-*.parquet"))) >= 1


def test_pandas_duckdb_and_polars_read_the_same_root(root: Path) -> None:
    import duckdb
    import polars as pl

    # The README's snippets, as written there.
    frame = pd.read_parquet(root)
    typed = pd.read_parquet(root, dtype_backend="pyarrow")
    duck = duckdb.sql(
        f"SELECT * FROM read_parquet('{root}/*/part-*.parquet', union_by_name = true)"
    ).arrow()
    if not isinstance(duck, pa.Table):  # duckdb >= 1.4 hands a RecordBatchReader
        duck = duck.read_all()
    polar = pl.read_parquet(f"{root}/*/part-*.parquet")
    lazy = pl.scan_parquet(f"{root}/*/part-*.parquet").select("run_id", "ttft_s").collect()

    # Worked out from the configs: 240 + 60 requests, and one per RAG case.
    cases = sum(1 for line in (REPO / "suites/rag_qa/acme_kb.jsonl").open() if line.strip())
    expected_rows = MERGED_REQUESTS + RESUMED_REQUESTS + cases
    assert len(frame) == len(typed) == duck.num_rows == polar.height == lazy.height
    assert len(frame) == expected_rows

    names = list(SCHEMA.names)
    assert list(frame.columns) == names == list(typed.columns)
    assert duck.column_names == names and polar.columns == names

    arrow_kinds = {f.name: _kind(str(f.type)) for f in SCHEMA}
    kinds = {
        "pandas (pyarrow dtypes)": {c: _kind(str(typed[c].dtype)) for c in names},
        "duckdb": {f.name: _kind(str(f.type)) for f in duck.schema},
        "polars": {c: _kind(str(t)) for c, t in polar.schema.items()},
    }
    for reader, found in kinds.items():
        assert found == arrow_kinds, reader
    # Default pandas dtypes: integers with a missing value become floats, text and lists
    # objects; nothing else changes family.
    for column in names:
        got, want = _kind(str(frame[column].dtype)), arrow_kinds[column]
        allowed = {want} | ({"float"} if want == "int" else set())
        allowed |= {"list"} if want in ("text", "list", "bool") else set()
        assert got in allowed, (column, got, want)

    # The same values, whichever reader.
    key = ["run_id", "request_index"]
    a = frame.sort_values(key).reset_index(drop=True)
    b = duck.to_pandas().sort_values(key).reset_index(drop=True)
    c = polar.to_pandas().sort_values(key).reset_index(drop=True)
    for other in (b, c):
        for column in ("run_id", "request_index", "provider", "status", "suite_kind"):
            assert a[column].tolist() == other[column].tolist(), column
        for column in ("ttft_s", "e2e_s", "cost_usd", "output_tokens"):
            pd.testing.assert_series_equal(
                a[column].astype("float64"), other[column].astype("float64"), check_names=False
            )
        assert (a["started_at"] == other["started_at"]).all()
        first = a["chunk_offsets_s"].dropna().iloc[0]
        assert list(other["chunk_offsets_s"].dropna().iloc[0]) == pytest.approx(list(first))
    counts = a.groupby("run_id").size().to_dict()
    assert counts == {"r1-merged": MERGED_REQUESTS, "r2-resumed": RESUMED_REQUESTS, "r3-rag": cases}
    resumed = a[a["run_id"] == "r2-resumed"]
    assert resumed["request_index"].is_unique and "cancelled" not in set(resumed["status"])
    assert lazy["ttft_s"].sum() == pytest.approx(float(a["ttft_s"].sum()))


def test_export_writes_every_column_of_every_row(root: Path, tmp_path: Path) -> None:
    import openpyxl  # type: ignore[import-untyped, unused-ignore]

    for extension in ("csv", "xlsx"):
        result = CliRunner().invoke(
            main, ["export", str(root), "--run", "r3-rag", "--to", str(tmp_path / f"r.{extension}")]
        )
        assert result.exit_code == 0, result.output
    stored = read_runs(root, ["r3-rag"]).to_pandas()
    rows = pd.read_csv(tmp_path / "r-requests.csv")
    assert list(rows.columns) == list(SCHEMA.names) and len(rows) == len(stored)
    references: Any = json.loads(rows["references"].dropna().iloc[0])
    assert isinstance(references, list) and all(isinstance(r, str) for r in references)
    assert sorted(rows["request_index"]) == sorted(stored["request_index"])
    book = openpyxl.load_workbook(tmp_path / "r.xlsx", read_only=True)
    assert book.sheetnames[-1] == "requests"
    sheet = book["requests"]
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == len(stored) + 1 and len(values[0]) == len(SCHEMA.names)
