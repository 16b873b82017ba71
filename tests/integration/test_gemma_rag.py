"""A real model: Gemma 3 270M on llama.cpp answers RAG QA cases through litellm, scored.

Needs the ``local`` extra; skipped without it unless ``HARNESS_REQUIRE_LOCAL`` is
set (CI sets it), then it fails.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.providers.local_server import local_extra_available
from harness.scoring import exact_match, f1

from ..conftest import TEST_DATA

pytestmark = pytest.mark.local


@pytest.fixture
def local_python() -> str:
    python = os.environ.get("HARNESS_LOCAL_PYTHON", "")
    if not local_extra_available(python=python or None):
        message = "the local extra is not installed: pip install '.[local]'"
        if os.environ.get("HARNESS_REQUIRE_LOCAL"):
            pytest.fail(message)
        pytest.skip(message)
    return python


def test_gemma_answers_are_scored(
    local_python: str, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    python_line = f"python: {local_python}" if local_python else ""
    config = write_config(
        f"""
        run: {{name: gemma, timeout_s: 120}}
        providers:
          - name: gemma-litellm
            local: {{chat_format: gemma, {python_line}}}
            transport: litellm
            params: {{temperature: 0}}
            concurrency: 1
        suites:
          - name: squad
            kind: rag_qa
            dataset: {TEST_DATA / "squad-v2" / "sample-200.jsonl"}
            limit: 4
            max_tokens: 16
        """.replace(", }", "}")
    )
    root = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(root)
    assert len(rows) == 4
    assert (rows["status"] == "ok").all(), rows["error_message"].tolist()
    assert (rows["transport"] == "litellm").all()
    # Real text came back, token by token, and was scored with the official metrics.
    assert (rows["response_text"].str.strip().str.len() > 0).all()
    assert (rows["text_chunks"] > 1).all()
    assert (rows["ttft_s"] > 0).all()
    for _, row in rows.iterrows():
        refs = list(row["references"])
        assert row["exact_match"] == exact_match(row["response_text"], refs)
        assert row["f1"] == f1(row["response_text"], refs)
    manifest = json.loads(next(root.glob("*/_manifest.json")).read_text())
    assert manifest["providers"]["gemma-litellm"]["transport"] == "litellm"
    log = next(root.glob("*/_local-gemma-litellm.log"))
    assert log.stat().st_size > 0
