"""tool_call end to end against the simulator: streamed tool-call deltas assembled by both
the direct and the litellm transport, scored per row, summarised with the suite's own
primary score (tool_exact), paired, and ranked on the leaderboard.

The simulated model's calls are known: by default it calls the case's first declared
tool with its required arguments taken from each parameter's ``examples[0]``
(harness.sim.server.tool_calls_for); a profile's ``tool_calls`` replaces that.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.report.leaderboard import leaderboard
from harness.report.summary import paired_quality, summarize

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "description": "Look up an order",
            "parameters": {
                "type": "object",
                "properties": {
                    "order_id": {"type": "string", "examples": ["A-1001"]},
                    "include_items": {"type": "boolean"},
                },
                "required": ["order_id"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "create_ticket",
            "parameters": {
                "type": "object",
                "properties": {
                    "title": {"type": "string", "examples": ["Printer broken"]},
                    "priority": {"type": "string", "enum": ["low", "high"], "examples": ["high"]},
                },
                "required": ["title", "priority"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "examples": ["Oslo"]}},
                "required": ["city"],
            },
        },
    },
]


def call(name: str, **arguments: object) -> dict[str, object]:
    return {"name": name, "arguments": arguments}


CASES = [
    # c1: the first tool, the right order id.
    ("c1", ["get_order"], [call("get_order", order_id="A-1001")]),
    # c2: expected text differs in case and surrounding whitespace only: equal.
    ("c2", ["get_order"], [call("get_order", order_id=" a-1001 ")]),
    # c3: the model calls the first tool (get_order) where create_ticket was wanted.
    (
        "c3",
        ["get_order", "create_ticket"],
        [call("create_ticket", title="Printer broken", priority="high")],
    ),
    # c4: right tool, one of two arguments wrong (priority high, expected low).
    ("c4", ["create_ticket"], [call("create_ticket", title="Printer broken", priority="low")]),
    # c5: no tool should be called.
    ("c5", ["get_order"], []),
    # c6: two parallel calls, expected in the other order.
    ("c6", ["get_weather"], [call("get_weather", city="Paris"), call("get_weather", city="Oslo")]),
]


def write_dataset(tmp_path: Path) -> tuple[Path, Path]:
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(TOOLS))
    data = tmp_path / "cases.jsonl"
    lines = [
        json.dumps(
            {"id": cid, "question": f"Case {cid}: please help.", "tools": names, "expected": exp}
        )
        for cid, names, exp in CASES
    ]
    data.write_text("\n".join(lines) + "\n")
    return tools, data


@pytest.mark.parametrize("transport", ["direct", "litellm"])
def test_tool_call_scores_summary_pairs_and_leaderboard(
    write_config: Callable[..., Path], tmp_path: Path, transport: str
) -> None:
    tools, data = write_dataset(tmp_path)
    config = write_config(
        f"""
        run: {{name: tools, concurrency: 4, warmup_requests: 0}}
        providers:
          - name: first
            transport: {transport}
            simulate: {{ttft_ms: 30, itl_ms: 1, seed: 1}}
            pricing: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}
          - name: pair
            transport: {transport}
            simulate:
              ttft_ms: 30
              itl_ms: 1
              tool_calls:
                - {{name: get_weather, arguments: {{city: Oslo}}}}
                - {{name: get_weather, arguments: {{city: paris}}}}
            pricing: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}
        suites:
          - name: acme-tools
            kind: tool_call
            dataset: {data}
            tools_file: {tools}
        """
    )
    root = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(root)
    assert len(rows) == 12 and (rows["status"] == "ok").all(), rows["error_message"].dropna()
    by = rows.set_index(["provider", "case_id"])

    # The assembled calls are the simulator's, arguments as the raw JSON text streamed.
    first_c1 = json.loads(by.loc[("first", "c1"), "tool_calls"])
    assert first_c1 == [
        {"id": "call_0", "name": "get_order", "arguments": '{"order_id": "A-1001"}'}
    ]
    pair_c6 = json.loads(by.loc[("pair", "c6"), "tool_calls"])
    assert [(c["name"], json.loads(c["arguments"])) for c in pair_c6] == [
        ("get_weather", {"city": "Oslo"}),
        ("get_weather", {"city": "paris"}),
    ]
    # A tool-only answer has no text: no TTFT, but a time to the first tool-call token
    # no earlier than the profile's 30 ms; the stream's chunks all counted (no mismatch).
    assert rows["ttft_s"].isna().all()
    assert (rows["ttft_tool_s"] >= 0.030).all() and (rows["ttft_tool_s"] < 5).all()
    assert (rows["finish_reason"] == "tool_calls").all()
    assert not rows["tokens_mismatch"].any()
    # get_order(order_id) streams a name fragment, then '{"order_id":' and ' "A-1001"}'.
    assert by.loc[("first", "c1"), "output_tokens"] == 3

    # Per row, worked by hand (module docstring of harness.scoring.tool_calls):
    #   first: c1 exact; c2 exact (" a-1001 " ~ "A-1001"); c3 get_order instead of
    #   create_ticket: 0 of 1 argument right, 0 of 2 expected; c4 title right, priority
    #   wrong: 1/2, 1/2; c5 a call where none was wanted: valid, not exact, 0 of 1
    #   argument right, no recall; c6 one of two calls: Oslo right: 1/1, 1/2.
    #   pair: get_weather is not declared in c1-c5 (hallucinated: not valid), 0 of 2
    #   arguments right; c6 both calls right in another order: exact.
    nan = math.nan
    expected = {
        ("first", "c1"): (1, 1, 1.0, 1.0),
        ("first", "c2"): (1, 1, 1.0, 1.0),
        ("first", "c3"): (1, 0, 0.0, 0.0),
        ("first", "c4"): (1, 0, 0.5, 0.5),
        ("first", "c5"): (1, 0, 0.0, nan),
        ("first", "c6"): (1, 0, 1.0, 0.5),
        ("pair", "c1"): (0, 0, 0.0, 0.0),
        ("pair", "c2"): (0, 0, 0.0, 0.0),
        ("pair", "c3"): (0, 0, 0.0, 0.0),
        ("pair", "c4"): (0, 0, 0.0, 0.0),
        ("pair", "c5"): (0, 0, 0.0, nan),
        ("pair", "c6"): (1, 1, 1.0, 1.0),
    }
    for key, (valid, exact, precision, recall) in expected.items():
        row = by.loc[key]
        got = (
            row["tool_valid"],
            row["tool_exact"],
            row["tool_arg_precision"],
            row["tool_arg_recall"],
        )
        assert got[:3] == (valid, exact, precision), (key, got, row["tool_error"])
        assert (math.isnan(recall) and pd.isna(got[3])) or got[3] == recall, (key, got)
    assert "hallucinated function 'get_weather'" in by.loc[("pair", "c1"), "tool_error"]
    assert by.loc[("first", "c4"), "tool_error"].startswith("create_ticket: priority='high'")

    # Summary: the kind's own scores. first: exact 2/6, valid 6/6, precision
    # (1+1+0+0.5+0+1)/6 = 3.5/6, recall (1+1+0+0.5+0.5)/5 = 3/5.
    # pair: exact 1/6, valid 1/6, precision 1/6, recall 1/5.
    table = summarize(rows).set_index("provider")
    first, pair = table.loc["first (simulated)"], table.loc["pair (simulated)"]
    assert first["tool_exact"] == pytest.approx(2 / 6)
    assert first["tool_valid"] == 1.0
    assert first["tool_arg_precision"] == pytest.approx(3.5 / 6)
    assert first["tool_arg_recall"] == pytest.approx(3 / 5)
    assert pair["tool_exact"] == pytest.approx(1 / 6)
    assert pair["tool_valid"] == pytest.approx(1 / 6)
    assert pair["tool_arg_recall"] == pytest.approx(1 / 5)
    assert first["tool_exact_ci_low"] <= 2 / 6 <= first["tool_exact_ci_high"]
    # $ per correct answer: cost over the 2 exact answers (1 for pair).
    assert first["usd_per_correct"] == pytest.approx(first["cost_usd"] / 2)
    assert pair["usd_per_correct"] == pytest.approx(pair["cost_usd"] / 1)
    assert "exact_match_abstain" not in table.columns  # no rag score leaks in
    # Tool-only answers have no TTFT; the summary times their first tool-call token.
    assert pd.isna(first["ttft_p50_ms"]) and first["ttft_tool_p50_ms"] >= 30

    # Paired on the same cases, by tool_exact: first [1,1,0,0,0,0] vs pair [0,0,0,0,0,1]:
    # 3 discordant cases (2 vs 1), far from significant.
    pairs = paired_quality(rows)
    assert pairs["metric"].tolist() == ["tool_exact"]
    assert pairs["n"].tolist() == [6]
    assert pairs["verdict"].tolist() == ["no significant difference"]
    assert pairs["mean_a"].iloc[0] + pairs["mean_b"].iloc[0] == pytest.approx(3 / 6)

    # Leaderboard quality: each suite's primary score.
    board = leaderboard(rows, weights={"quality": 1}).set_index("provider")
    assert board.loc["first (simulated)", "quality"] == pytest.approx(2 / 6)
    assert board.loc["pair (simulated)", "quality"] == pytest.approx(1 / 6)

    out = CliRunner().invoke(main, ["summarize", str(root)])
    assert out.exit_code == 0, out.output
    assert "tool exact [95% CI]" in out.output and "tool TTFT p50 (ms)" in out.output
    assert "Paired comparison on the same cases of acme-tools (tool_exact)" in out.output


def test_tool_choice_none_gets_text_and_no_call(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    tools, data = write_dataset(tmp_path)
    config = write_config(
        f"""
        run: {{name: tools-none, warmup_requests: 0}}
        providers:
          - name: first
            simulate: {{ttft_ms: 1, itl_ms: 0, output_tokens: 4}}
        suites:
          - name: no-tools
            kind: tool_call
            dataset: {data}
            tools_file: {tools}
            tool_choice: none
        """
    )
    root = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(root).set_index("case_id")
    assert rows["tool_calls"].isna().all() and (rows["output_tokens"] == 4).all()
    # No call made: right only where none was expected (c5), and valid only there too.
    assert rows["tool_exact"].to_dict() == {c: float(c == "c5") for c, _, _ in CASES}
    assert rows["tool_valid"].to_dict() == {c: float(c == "c5") for c, _, _ in CASES}
    assert rows.loc["c1", "tool_error"] == "expected 1 call(s), got none"


def test_first_tool_token_lifts_the_first_token_timeout(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    tools, data = write_dataset(tmp_path)
    # c1's call, get_order(order_id="A-1001"), streams 3 tokens (name, '{"order_id":',
    # ' "A-1001"}') at 50, 450 and 850 ms: the whole answer takes longer than the 0.3 s
    # first-token timeout, which the first tool-call token (at 50 ms) must lift.
    config = write_config(
        f"""
        run: {{name: tools-slow, warmup_requests: 0}}
        providers:
          - name: slow
            simulate: {{ttft_ms: 50, itl_ms: 400}}
            first_token_timeout_s: 0.3
            max_retries: 0
        suites:
          - name: slow-tools
            kind: tool_call
            dataset: {data}
            tools_file: {tools}
            limit: 1
        """
    )
    root = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    row = pd.read_parquet(root).iloc[0]
    assert row["status"] == "ok", row["error_message"]
    assert row["e2e_s"] >= 0.85 and row["ttft_tool_s"] >= 0.05
