"""RAG QA end to end: datasets, prompts, scores per row, judge, quality summary with CIs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.scoring import exact_match, f1, is_abstention
from harness.sim import SimProcess

from ..conftest import REPO, TEST_DATA, sim_requests

SQUAD_SAMPLE = TEST_DATA / "squad-v2" / "sample-200.jsonl"


def test_squad_sample_is_present() -> None:
    assert SQUAD_SAMPLE.is_file(), f"missing test data: {SQUAD_SAMPLE}"


def test_rag_run_scores_every_answer_and_judges_it(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        run: {{name: rag, concurrency: 16}}
        providers:
          - name: parrot
            simulate: {{ttft_ms: 5, itl_ms: 1, output_tokens: 6, seed: 1}}
          - name: humble
            simulate: {{ttft_ms: 5, itl_ms: 1, output_tokens: 6, abstain_rate: 1.0}}
        suites:
          - name: squad
            kind: rag_qa
            dataset: {SQUAD_SAMPLE}
            limit: 40
            judge:
              simulate: {{ttft_ms: 1, itl_ms: 0, seed: 5}}
          - {REPO / "suites" / "rag_qa" / "acme_kb.yaml"}
        """
    )
    root = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(root)
    squad = rows[rows["suite"] == "squad"]
    assert len(squad) == 80
    assert (squad["status"] == "ok").all()
    # Stored scores are the official metrics of the stored answer.
    for _, row in squad.iterrows():
        refs = list(row["references"])
        assert row["exact_match"] == exact_match(row["response_text"], refs)
        assert row["f1"] == f1(row["response_text"], refs)
        assert row["answerable"] == bool(refs)
        assert row["abstained"] == is_abstention(row["response_text"])
    humble = squad[squad["provider"] == "humble"]
    assert humble["abstained"].all()
    # Abstaining is right exactly on the unanswerable cases.
    assert (humble["exact_match_abstain"] == (~humble["answerable"]).astype(float)).all()
    # Official SQuAD: "I don't know" is not the empty answer, so it scores 0 even there.
    assert (humble["exact_match"] == 0).all()

    # The judge graded every answer with structured output, apart from the candidate's cost.
    assert squad["judge_error"].isna().all(), squad["judge_error"].dropna().head()
    assert squad["judge_correctness"].isin([0.0, 0.5, 1.0]).all()
    assert squad["judge_faithful"].notna().all()
    assert (squad["judge_input_tokens"] > 0).all()
    assert squad["judge_model"].eq("openai/judge-squad").all()

    acme = rows[rows["suite"] == "rag-acme"]
    assert len(acme) == 2 * 48
    assert acme["judge_model"].isna().all()

    out = CliRunner().invoke(main, ["summarize", str(root), "--format", "json"])
    summary = {(r["suite"], r["provider"]): r for r in json.loads(out.stdout)}
    line = summary[("squad", "humble (simulated)")]
    unanswerable_share = (~humble["answerable"]).mean()
    assert line["exact_match_abstain"] == pytest.approx(unanswerable_share)
    assert line["exact_match_abstain_ci_low"] <= line["exact_match_abstain"]
    assert line["exact_match_abstain"] <= line["exact_match_abstain_ci_high"]
    assert line["abstention_accuracy"] == pytest.approx(1.0)
    assert line["judge_correctness"] is not None


def test_bad_dataset_is_a_config_error_with_the_line(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    data = tmp_path / "cases.jsonl"
    data.write_text(
        '{"id": "a", "question": "q?", "contexts": ["c"], "references": ["r"]}\n'
        '{"id": "b", "question": "q?", "contexts": "not a list", "references": []}\n'
    )
    config = write_config(
        """
        providers:
          - {name: p, simulate: {}}
        suites:
          - {name: s, kind: rag_qa, dataset: cases.jsonl}
        """
    )
    result = CliRunner().invoke(main, ["validate", str(config)])
    assert result.exit_code == 2
    assert f"{config}:5: suites[0]" in result.stderr
    assert "cases.jsonl:2" in result.stderr


def test_response_cache_never_rebuys_an_answer(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        run: {{name: cached, response_cache: {tmp_path / "cache"}}}
        providers:
          - {{name: steady, model: openai/steady, api_base: "{sim.api_base}",
              pricing: {{input_per_mtok: 1.0, output_per_mtok: 1.0}}}}
        suites:
          - {{name: qa, kind: rag_qa, dataset: "{SQUAD_SAMPLE}", limit: 10}}
        """
    )
    first, second = tmp_path / "first", tmp_path / "second"
    assert (
        CliRunner()
        .invoke(main, ["run", str(config), "--out", str(first), "--no-progress"])
        .exit_code
        == 0
    )
    before = sim_requests(sim)
    assert (
        CliRunner()
        .invoke(main, ["run", str(config), "--out", str(second), "--no-progress"])
        .exit_code
        == 0
    )
    assert sim_requests(sim) - before == 1  # only the unrecorded warm-up went out
    a = pd.read_parquet(first).sort_values("request_index").reset_index(drop=True)
    b = pd.read_parquet(second).sort_values("request_index").reset_index(drop=True)
    assert not a["from_cache"].fillna(False).any()
    assert b["from_cache"].all()
    assert b["response_text"].tolist() == a["response_text"].tolist()
    assert b["f1"].tolist() == a["f1"].tolist()
    assert b["ttft_s"].isna().all()  # nothing was measured


def test_response_cache_serves_a_run_of_the_same_id_in_another_root(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    """Run ids are a timestamp to the second plus the run's name: two quick runs into two
    results roots can share one. The second must still be served the first's answers (it
    once was not: the cache took the same id for its own entries and resent all 10)."""
    config = write_config(
        f"""
        run: {{name: twin, response_cache: {tmp_path / "cache"}}}
        providers:
          - {{name: steady, model: openai/steady, api_base: "{sim.api_base}"}}
        suites:
          - {{name: qa, kind: rag_qa, dataset: "{SQUAD_SAMPLE}", limit: 10}}
        """
    )
    for out in ("first", "second"):
        before = sim_requests(sim)
        args = ["run", str(config), "--out", str(tmp_path / out), "--run-id", "same"]
        result = CliRunner().invoke(main, [*args, "--no-progress"])
        assert result.exit_code == 0, result.output
        sent = sim_requests(sim) - before
    # The second run: 1 unrecorded warm-up, 10 answers from the cache, nothing else.
    assert sent == 1
    rows = pd.read_parquet(tmp_path / "second")
    assert rows["from_cache"].all() and len(rows) == 10
