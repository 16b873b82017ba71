"""structured end to end against the simulator: each mode sent as its dialect asks, scored
per row, summarised by field_accuracy, and the latency of structured vs free-form answers
to the same prompts side by side.

The simulated model's JSON is known: for a response_format request it answers each
property's ``examples[0]`` (harness.sim.server.fill_schema), an array with two items;
with ``invalid_json_rate: 1`` the document loses its last character.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.report.build import build_report
from harness.report.quality import structured_latency
from harness.report.summary import summarize

CASES = [
    # s1: both fields right ("Ada Lovelace" ~ "ada lovelace"; 36 == 36): 2/2.
    {
        "id": "s1",
        "prompt": "Who is in this note? Ada Lovelace, aged 36.",
        "schema": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "examples": ["Ada Lovelace"]},
                "age": {"type": "integer", "examples": [36]},
            },
            "required": ["name", "age"],
        },
        "expected": {"name": "ada lovelace", "age": 36},
    },
    # s2: total 12 == 12.0 right; currency is an enum: "USD" != "EUR": 1/2.
    {
        "id": "s2",
        "prompt": "Invoice total: 12 EUR.",
        "schema": {
            "type": "object",
            "properties": {
                "total": {"type": "number", "examples": [12]},
                "currency": {"enum": ["EUR", "USD"], "examples": ["USD"]},
            },
        },
        "expected": {"total": 12.0, "currency": "EUR"},
    },
    # s3: the answer (qty 0) breaks the schema's minimum: JSON, not schema-valid, 0/1.
    {
        "id": "s3",
        "prompt": "Three boxes please.",
        "schema": {
            "type": "object",
            "properties": {"qty": {"type": "integer", "minimum": 1, "examples": [0]}},
        },
        "expected": {"qty": 3},
    },
    # s4: the array has two items, both sku "X1": items[0] right, items[1] ("Y2") wrong: 1/2.
    {
        "id": "s4",
        "prompt": "Lines: X1 and Y2.",
        "schema": {
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"sku": {"type": "string", "examples": ["X1"]}},
                    },
                }
            },
        },
        "expected": {"items": [{"sku": "X1"}, {"sku": "Y2"}]},
    },
]


def test_structured_modes_scores_and_free_form_latency(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    data = tmp_path / "extract.jsonl"
    data.write_text("".join(json.dumps(c) + "\n" for c in CASES))
    config = write_config(
        f"""
        run: {{name: structured, concurrency: 4, warmup_requests: 0}}
        providers:
          - name: schema
            simulate: {{ttft_ms: 20, itl_ms: 2, output_tokens: 3, seed: 1}}
          - name: llamacpp
            simulate: {{ttft_ms: 20, itl_ms: 2, output_tokens: 3, seed: 1}}
          - name: broken
            simulate: {{ttft_ms: 20, itl_ms: 2, output_tokens: 3, invalid_json_rate: 1.0}}
          - name: plain
            simulate: {{ttft_ms: 20, itl_ms: 2, output_tokens: 3}}
        suites:
          - name: extract
            kind: structured
            dataset: {data}
            compare_free_form: true
            provider_modes: {{llamacpp: json_object_schema, plain: instruction}}
        """
    )
    root = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(root)
    # 4 providers x 4 cases x (structured + free-form twin).
    assert len(rows) == 32 and (rows["status"] == "ok").all()
    structured = rows[rows["suite"] == "extract"].set_index(["provider", "case_id"])
    free = rows[rows["suite"] == "extract.free_form"]
    assert (free["structured_mode"] == "free_form").all()
    assert free["field_accuracy"].isna().all()  # free-form answers are not scored
    modes = structured.groupby(level="provider")["structured_mode"].first().to_dict()
    assert modes == {
        "schema": "json_schema",
        "llamacpp": "json_object_schema",
        "broken": "json_schema",
        "plain": "instruction",
    }
    # The simulator answered with the examples (the JSON text as streamed).
    assert json.loads(structured.loc[("schema", "s1"), "response_text"]) == {
        "name": "Ada Lovelace",
        "age": 36,
    }
    assert (
        structured.loc[("llamacpp", "s1"), "response_text"]
        == structured.loc[("schema", "s1"), "response_text"]
    )

    # Per case (see CASES): json_valid, schema_valid, field_accuracy.
    by_case = {"s1": (1, 1, 1.0), "s2": (1, 1, 0.5), "s3": (1, 0, 0.0), "s4": (1, 1, 0.5)}
    for provider in ("schema", "llamacpp"):
        for case, scores in by_case.items():
            row = structured.loc[(provider, case)]
            got = (row["json_valid"], row["schema_valid"], row["field_accuracy"])
            assert got == scores, (provider, case, got, row["structured_error"])
    # Cut documents and prose answers are not JSON: 0 everywhere.
    for provider in ("broken", "plain"):
        part = structured.loc[provider]
        assert (part[["json_valid", "schema_valid", "field_accuracy"]] == 0).all().all()
        assert (part["structured_error"] == "the answer is not JSON").all()
    assert structured.loc[("schema", "s3"), "structured_error"].startswith("schema: qty:")

    # Summary: field accuracy (1 + 0.5 + 0 + 0.5) / 4 = 0.5; schema_valid 3/4; json 1.
    table = summarize(rows).set_index(["suite", "provider"])
    line = table.loc[("extract", "schema (simulated)")]
    assert line["field_accuracy"] == pytest.approx(0.5)
    assert line["schema_valid"] == pytest.approx(0.75)
    assert line["json_valid"] == 1.0
    assert table.loc[("extract", "broken (simulated)"), "field_accuracy"] == 0.0
    assert pd.isna(table.loc[("extract", "broken (simulated)"), "usd_per_correct"])

    # Side by side: the same 4 prompts structured and free-form, per provider. A free-form
    # answer is output_tokens: 3 words; the structured one its JSON's space-separated
    # pieces, e.g. s1 '{"name": "Ada Lovelace", "age": 36}' = 5.
    side = structured_latency(rows).set_index("provider")
    assert sorted(side.index) == ["broken", "llamacpp", "plain", "schema"]
    assert (side["cases"] == 4).all()
    assert side.loc["schema", "mode"] == "json_schema"
    assert side.loc["schema", "free_form_output_tokens_mean"] == 3.0
    # s1 5, s2 '{"total": 12, "currency": "USD"}' 4, s3 '{"qty": 0}' 2,
    # s4 '{"items": [{"sku": "X1"}, {"sku": "X1"}]}' 5: mean 16 / 4 = 4.
    assert side.loc["schema", "structured_output_tokens_mean"] == 4.0
    assert (
        side.loc["schema", "structured_e2e_p50_ms"] > side.loc["schema", "structured_ttft_p50_ms"]
    )
    assert side.loc["schema", "e2e_ratio"] > 0

    report = build_report(root)
    assert "structured vs free form" in report.tables
    out = CliRunner().invoke(main, ["summarize", str(root)])
    assert out.exit_code == 0, out.output
    assert "Structured vs free-form answers to the same prompts" in out.output
    assert "field accuracy [95% CI]" in out.output
