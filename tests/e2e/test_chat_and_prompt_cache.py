"""``chat`` (multi-turn) and ``prompt_cache`` suites end to end against the simulator.

The simulator's scripted replies make every answer known in advance, and one word is one
token there, so scores, tokens and prices below are worked out by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.config.spec import load_config
from harness.report.summary import load_summary
from harness.report.workloads import chat_turns, prompt_cache_table
from harness.run.session import execute
from harness.sim import SimProcess, SimProfile

REPLIES = {
    "capital of France": "Paris it is",
    "its river": "The Seine river",
    "primary colour": "blue",
    "another one": "yellow sure",
    "long story": " ".join(["word"] * 100),
}
CONVERSATIONS = [
    {
        "id": "c1",
        "turns": [
            {"user": "What is the capital of France?", "reference": "Paris"},
            {"user": "And its river?", "reference": "the Seine", "regex": "seine"},
        ],
    },
    {
        "id": "c2",
        "system": "Be brief.",
        "turns": [
            {"user": "Name a primary colour.", "reference": "red"},
            {"user": "Another one?", "reference": "blue", "regex": "blue|yellow"},
            {"user": "What do they make mixed?", "regex": "green"},
        ],
    },
]


@pytest.fixture(scope="module")
def wsim() -> Iterator[SimProcess]:
    """A simulator of its own: its prefix cache and received log are this module's."""
    profiles = {
        "chatty": SimProfile(ttft_ms=5, itl_ms=1, output_tokens=8, replies=REPLIES),
        "cachey": SimProfile(
            ttft_ms=300, itl_ms=1, output_tokens=4, prefix_cache=True, cache_ttft_ms=20
        ),
    }
    with SimProcess(profiles) as process:
        yield process


def received(process: SimProcess) -> list[dict[str, Any]]:
    """What the simulator received since the last call (model and messages)."""
    base = process.api_base.removesuffix("/v1")
    data: list[dict[str, Any]] = httpx.get(f"{base}/sim/received").json()
    return data


@pytest.fixture
def conversations(tmp_path: Path) -> Path:
    path = tmp_path / "conversations.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in CONVERSATIONS))
    return path


def chat_config(write_config: Callable[..., Path], wsim: SimProcess, dataset: Path) -> Path:
    return write_config(
        f"""
        run: {{name: chat, concurrency: 4, warmup_requests: 0}}
        providers:
          - name: chatty
            model: openai/chatty
            api_base: {wsim.api_base}
            pricing: {{input_per_mtok: 1.0, output_per_mtok: 4.0}}
        suites:
          - {{name: own, kind: chat, dataset: {dataset}}}
          - {{name: ref, kind: chat, dataset: {dataset}, history: reference}}
        """
    )


def by_case(rows: pd.DataFrame, suite: str) -> dict[str, dict[str, Any]]:
    return {r["case_id"]: r for r in rows[rows["suite"] == suite].to_dict("records")}


def test_chat_turns_carry_their_own_history(
    wsim: SimProcess, write_config: Callable[..., Path], conversations: Path, tmp_path: Path
) -> None:
    config = chat_config(write_config, wsim, conversations)
    received(wsim)  # forget what earlier tests sent
    root = tmp_path / "out"
    result = execute(load_config(config), out=root, run_id="chat", show_progress=False)
    assert result.status == "completed"
    rows = pd.read_parquet(root / "chat")
    own = by_case(rows, "own")
    # One row per turn: 2 + 3 turns in each suite.
    assert sorted(own) == ["c1/1", "c1/2", "c2/1", "c2/2", "c2/3"]
    assert len(rows) == 10 and (rows["status"] == "ok").all()
    assert [own[c]["turn"] for c in ("c1/1", "c1/2", "c2/3")] == [1, 2, 3]
    # Own history: turn 2 carried turn 1's own answer, turn 3 both earlier answers.
    assert list(own["c1/2"]["chat_history"]) == ["Paris it is"]
    assert list(own["c2/3"]["chat_history"]) == ["blue", "yellow sure"]
    ref = by_case(rows, "ref")
    assert list(ref["c1/2"]["chat_history"]) == ["Paris"]
    assert list(ref["c2/3"]["chat_history"]) == ["red", "blue"]

    # On the wire: the river question went out once with the provider's own answer
    # and once with the reference one.
    wire = received(wsim)
    assert len(wire) == 10
    river = [r["messages"] for r in wire if r["messages"][-1]["content"] == "And its river?"]
    q1 = {"role": "user", "content": "What is the capital of France?"}
    last = {"role": "user", "content": "And its river?"}
    assert sorted(river, key=str) == sorted(
        [
            [q1, {"role": "assistant", "content": "Paris it is"}, last],
            [q1, {"role": "assistant", "content": "Paris"}, last],
        ],
        key=str,
    )
    mixed = [r["messages"] for r in wire if r["messages"][-1]["content"].startswith("What do")]
    assert [m["content"] for m in mixed[0] if m["role"] == "assistant"] in (
        ["blue", "yellow sure"],
        ["red", "blue"],
    )

    # Scores by hand (SQuAD normalisation: lower case, no punctuation or articles):
    # c1/1 "Paris it is" vs "Paris": EM 0; F1 P=1/3 R=1 → 2·(1/3)/(4/3) = 0.5; contains 1.
    assert (own["c1/1"]["exact_match"], own["c1/1"]["f1"]) == (0.0, 0.5)
    assert own["c1/1"]["contains"] == 1.0 and own["c1/1"]["turn_score"] == 1.0
    # c1/2 "The Seine river" → "seine river" vs "seine": F1 P=1/2 R=1 → 2/3; regex 1.
    assert own["c1/2"]["f1"] == pytest.approx(2 / 3)
    assert own["c1/2"]["regex_match"] == 1.0 and own["c1/2"]["turn_score"] == 1.0
    # c2/1 "blue" vs "red": everything 0 (auto score without a regex: contains).
    assert own["c2/1"]["turn_score"] == 0.0 and own["c2/1"]["f1"] == 0.0
    # c2/2 "yellow sure" matches blue|yellow; c2/3 has no reply → simulated words, no "green".
    assert own["c2/2"]["turn_score"] == 1.0
    assert own["c2/3"]["regex_match"] == 0.0 and pd.isna(own["c2/3"]["exact_match"])

    # Tokens and cost by hand (one word one token; $1 in, $4 out per million):
    # c1/1: in 6, out 3 → 6 + 12 = 18 µ$; c1/2: in 6+3+3 = 12, out 3 → 12 + 12 = 24 µ$.
    assert (own["c1/2"]["input_tokens"], own["c1/2"]["output_tokens"]) == (12, 3)
    assert own["c1/1"]["cost_usd"] == pytest.approx(18e-6)
    assert own["c1/2"]["cost_usd"] == pytest.approx(24e-6)
    # c2/1: in 2+4 = 6, out 1 → 10 µ$; c2/2: in 2+4+1+2 = 9, out 2 → 17 µ$;
    # c2/3: in 2+4+1+2+2+5 = 16, out 8 (no reply: the profile's 8 words) → 48 µ$.
    assert own["c2/3"]["input_tokens"] == 16
    assert own["c2/3"]["cost_usd"] == pytest.approx(48e-6)
    # Conversations: c1 = 18 + 24 = 42 µ$, c2 = 10 + 17 + 48 = 75 µ$ → 58.5 µ$ each.
    _, all_rows, summary = load_summary(root, "chat")
    line = summary[summary["suite"] == "own"].iloc[0]
    assert line["conversations"] == 2
    assert line["usd_per_conversation"] == pytest.approx(58.5e-6)
    # Turn score over the 5 turns (each a case): (1 + 1 + 0 + 1 + 0) / 5.
    assert line["turn_score"] == pytest.approx(0.6)
    assert line["turn_score_ci_low"] <= 0.6 <= line["turn_score_ci_high"]
    # The last turn's context: c1/2 has 12 input tokens, c2/3 16 → 14.
    assert line["input_tokens_last_turn_mean"] == pytest.approx(14.0)
    turns = chat_turns(all_rows)
    own_turns = turns[turns["suite"] == "own"].set_index("turn")
    assert own_turns["requests"].to_dict() == {1: 2, 2: 2, 3: 1}
    # Turn 2 costs 24 + 17 = 41 µ$.
    assert own_turns.loc[2, "cost_usd"] == pytest.approx(41e-6)
    assert (own_turns["ttft_p50_ms"] >= 5).all()


def test_resume_mid_conversation_sends_only_unfinished_turns(
    wsim: SimProcess, write_config: Callable[..., Path], conversations: Path, tmp_path: Path
) -> None:
    config = chat_config(write_config, wsim, conversations)
    root = tmp_path / "out"
    execute(load_config(config), out=root, run_id="r", show_progress=False)
    # As if the run had stopped after turn 1 of both conversations in suite "own":
    # its later turns' rows are gone (c2/3 waits for c2/2, which is unfinished too).
    dropped = {"c1/2", "c2/2", "c2/3"}
    for part in (root / "r").glob("part-*.parquet"):
        table = pq.read_table(part)
        keep = [
            not (s == "own" and c in dropped)
            for s, c in zip(
                table.column("suite").to_pylist(), table.column("case_id").to_pylist(), strict=True
            )
        ]
        pq.write_table(table.filter(keep), part)
    received(wsim)
    result = execute(load_config(config), out=root, resume="r", show_progress=False)
    assert result.status == "completed"
    wire = received(wsim)
    # Only the three unfinished turns were sent.
    assert sorted(m["messages"][-1]["content"] for m in wire) == [
        "And its river?",
        "Another one?",
        "What do they make mixed?",
    ]
    sent = {m["messages"][-1]["content"]: m["messages"] for m in wire}
    # c1/2 got turn 1's answer from the stored row; c2/3 the answer c2/2 gave just now.
    assert sent["And its river?"][1] == {"role": "assistant", "content": "Paris it is"}
    assistant = [m["content"] for m in sent["What do they make mixed?"] if m["role"] == "assistant"]
    assert assistant == ["blue", "yellow sure"]
    rows = pd.read_parquet(root / "r")
    assert len(rows) == 10 and rows["request_index"].is_unique
    own = by_case(rows, "own")
    assert list(own["c2/3"]["chat_history"]) == ["blue", "yellow sure"]


def test_a_turn_after_a_failed_turn_is_not_sent(
    wsim: SimProcess, write_config: Callable[..., Path], conversations: Path, tmp_path: Path
) -> None:
    config = write_config(
        f"""
        run: {{name: chat, warmup_requests: 0}}
        providers:
          - {{name: dead, model: openai/chatty, api_base: "http://127.0.0.1:9/v1",
              max_retries: 0, timeout_s: 2}}
        suites:
          - {{name: own, kind: chat, dataset: {conversations}}}
        """
    )
    root = tmp_path / "out"
    execute(load_config(config), out=root, run_id="x", show_progress=False)
    own = by_case(pd.read_parquet(root / "x"), "own")
    assert own["c1/1"]["error_type"] == "connection_error"
    assert own["c1/2"]["error_type"] == "earlier_turn_failed"
    # Nothing was sent for it: no timing, no status, scored 0 like any failed request.
    assert pd.isna(own["c1/2"]["t0_perf_s"]) and pd.isna(own["c1/2"]["http_status"])
    assert own["c1/2"]["turn_score"] == 0.0
    assert own["c2/3"]["error_type"] == "earlier_turn_failed"


def test_prompt_cache_cold_then_warm(
    wsim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        run: {{name: cache, concurrency: 8}}
        providers:
          - name: openai-dialect
            model: openai/cachey
            api_base: {wsim.api_base}
            concurrency: 8
            pricing: {{input_per_mtok: 2.0, output_per_mtok: 8.0, cached_input_per_mtok: 0.5}}
          - name: anthropic-dialect
            model: anthropic/cachey
            api_base: {wsim.api_base}
            transport: anthropic
            concurrency: 8
            pricing: {{input_per_mtok: 2.0, output_per_mtok: 8.0, cached_input_per_mtok: 0.5}}
          - name: anthropic-litellm
            model: anthropic/cachey
            api_base: {wsim.api_base}
            transport: litellm
            concurrency: 8
            pricing: {{input_per_mtok: 2.0, output_per_mtok: 8.0, cached_input_per_mtok: 0.5}}
        suites:
          # The breakpoint: Anthropic (and its simulated dialect) caches nothing without
          # one, and both transports must carry it (the native one once dropped it).
          - name: pc
            kind: prompt_cache
            prefix_tokens: 64
            prefixes: 2
            cache_control: true
            suffixes: ["Question one here?", "Question two here?", "Question three here?"]
        """
    )
    root = tmp_path / "out"
    result = execute(load_config(config), out=root, run_id="pc", show_progress=False)
    assert result.status == "completed"
    rows = pd.read_parquet(root / "pc")
    assert len(rows) == 18 and (rows["status"] == "ok").all()
    for provider, group in rows.groupby("provider"):
        cold = group[group["cache_role"] == "cold"]
        warm = group[group["cache_role"] == "warm"]
        assert len(cold) == 2 and len(warm) == 4, provider
        # Cold: nothing cached (a fresh salt each); warm: the 64-token prefix.
        assert (cold["cached_input_tokens"] == 0).all()
        assert (warm["cached_input_tokens"] == 64).all()
        assert (warm["cache_expected_tokens"] == 64).all()
        assert not group["cache_mismatch"].any() and warm["cache_hit"].all()
        # Both dialects count the whole prompt: 64 prefix + 3 suffix words.
        assert (group["input_tokens"] == 67).all()
        # Every warm request was sent after its prefix's cold one had ended, although
        # all six could have started at once (concurrency 8).
        for _, w in warm.iterrows():
            c = cold[cold["cache_prefix"] == w["cache_prefix"]].iloc[0]
            assert w["sent_s"] >= c["sent_s"] + c["e2e_s"] - 1e-3
            assert w["cache_salt"] == c["cache_salt"]
        assert cold["cache_salt"].nunique() == 2
        # Cold starts after 300 ms, warm after 20 ms (upper bound generous: loaded host).
        assert (cold["ttft_s"] >= 0.3).all()
        assert (warm["ttft_s"] >= 0.02).all() and (warm["ttft_s"] < 0.25).all()
        # Prices by hand ($2 in, $0.5 cached, $8 out per million):
        # cold 67·2 + 4·8 = 166 µ$; warm 64·0.5 + 3·2 + 4·8 = 32 + 6 + 32 = 70 µ$.
        assert cold["cost_usd"].to_list() == pytest.approx([166e-6] * 2)
        assert warm["cost_usd"].to_list() == pytest.approx([70e-6] * 4)

    table = prompt_cache_table(rows).set_index("provider")
    for provider in ("openai-dialect", "anthropic-dialect", "anthropic-litellm"):
        line = table.loc[provider]
        assert line["cache_hit_rate"] == 1.0 and line["cached_token_rate"] == 1.0
        assert line["cache_mismatches"] == 0
        assert line["ttft_cold_p50_ms"] >= 300 and line["ttft_warm_p50_ms"] < 250
        # Effective: (2·166 + 4·70) / 6 = 612 / 6 = 102 µ$; list: 166 µ$ each;
        # saving 1 - 102/166 = 64/166.
        assert line["usd_per_request"] == pytest.approx(102e-6)
        assert line["list_usd_per_request"] == pytest.approx(166e-6)
        assert line["cache_saving"] == pytest.approx(64 / 166)
    # The summary line has the same figures.
    _, _, summary = load_summary(root, "pc")
    assert summary["cache_hit_rate"].eq(1.0).all()
    assert summary["usd_per_request"].to_list() == pytest.approx([102e-6] * 3)


@pytest.mark.parametrize("transport", ["anthropic", "litellm"])
def test_anthropic_caches_nothing_without_a_breakpoint(
    wsim: SimProcess, write_config: Callable[..., Path], tmp_path: Path, transport: str
) -> None:
    """As Anthropic's API does: an unmarked prefix is never read from the cache, and the
    suite says so (a warm request expected 64 cached tokens and got 0: a mismatch)."""
    config = write_config(
        f"""
        run: {{name: cache, concurrency: 4}}
        providers:
          - {{name: a, model: anthropic/cachey, api_base: {wsim.api_base},
              transport: {transport}}}
        suites:
          - {{name: pc, kind: prompt_cache, prefix_tokens: 64, prefixes: 1,
              suffixes: ["Question one here?", "Question two here?"]}}
        """
    )
    root = tmp_path / "out"
    execute(load_config(config), out=root, run_id="pc", show_progress=False)
    rows = pd.read_parquet(root / "pc")
    assert len(rows) == 2 and (rows["status"] == "ok").all()
    warm = rows[rows["cache_role"] == "warm"].iloc[0]
    assert warm["cached_input_tokens"] == 0 and warm["cache_expected_tokens"] == 64
    assert warm["cache_mismatch"] and not warm["cache_hit"]
    assert (rows["input_tokens"] == 64 + 3).all()  # the whole prompt, uncached


def test_bad_conversation_file_names_file_line_and_key(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = tmp_path / "bad.jsonl"
    dataset.write_text(
        json.dumps(CONVERSATIONS[0]) + "\n" + json.dumps({"id": "c9", "turns": [{"user": "x"}]})
    )
    config = write_config(
        f"""
        run: {{name: bad}}
        providers: [{{name: p, simulate: {{}}}}]
        suites: [{{name: own, kind: chat, dataset: {dataset}}}]
        """
    )
    result = CliRunner().invoke(main, ["validate", str(config)])
    assert result.exit_code == 2
    assert f"{dataset}:2: turns.0" in result.output
    assert "needs a 'reference' or a 'regex'" in result.output


def test_worker_processes_keep_each_conversation_in_one_worker(
    wsim: SimProcess, write_config: Callable[..., Path], conversations: Path, tmp_path: Path
) -> None:
    config = write_config(
        f"""
        run: {{name: chat, workers: 2, concurrency: 4, warmup_requests: 0}}
        providers:
          - {{name: chatty, model: openai/chatty, api_base: "{wsim.api_base}"}}
        suites:
          - {{name: own, kind: chat, dataset: {conversations}}}
        """
    )
    root = tmp_path / "out"
    result = execute(load_config(config), out=root, run_id="w", show_progress=False)
    assert result.status == "completed"
    rows = pd.read_parquet(root / "w")
    own = by_case(rows, "own")
    assert len(own) == 5 and (rows["status"] == "ok").all()
    # c1 (root at plan position 0) went to worker 0, c2 (position 1) to worker 1.
    assert {own[c]["worker"] for c in ("c1/1", "c1/2")} == {0}
    assert {own[c]["worker"] for c in ("c2/1", "c2/2", "c2/3")} == {1}
    assert list(own["c1/2"]["chat_history"]) == ["Paris it is"]
    assert list(own["c2/3"]["chat_history"]) == ["blue", "yellow sure"]


def test_the_budget_reserves_a_turn_with_its_own_history(
    wsim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    dataset = tmp_path / "story.jsonl"
    story = {
        "id": "s",
        "turns": [
            {"user": "Tell me a long story.", "reference": "ok"},
            {"user": "Go on.", "reference": "ok"},
        ],
    }
    dataset.write_text(json.dumps(story) + "\n")
    config = write_config(
        f"""
        run: {{name: budget, warmup_requests: 0, budget_usd: 0.1}}
        providers:
          - name: chatty
            model: openai/chatty
            api_base: {wsim.api_base}
            pricing: {{input_per_mtok: 1000, output_per_mtok: 0}}
        suites:
          - {{name: own, kind: chat, dataset: {dataset}}}
        """
    )
    root = tmp_path / "out"
    result = execute(load_config(config), out=root, run_id="b", show_progress=False)
    # Worst cases, o200k tokens + 4 per message, $0.001 per input token:
    # turn 1: "Tell me a long story." 6 + 4 = 10 → $0.010, sent; it is billed the
    # simulator's 5 words → $0.005, and answers "word" × 100.
    # Turn 2 with its own history: 10 + (100 + 4) + ("Go on." 3 + 4) = 121 → $0.121, and
    # 0.005 + 0.121 > 0.1: not sent. (With the planned reference history "ok" it would be
    # 10 + 5 + 7 = 22 → $0.022, and sent.)
    assert result.stopped_reason is not None
    assert "worst case $0.121000" in result.stopped_reason
    rows = pd.read_parquet(root / "b")
    assert rows["case_id"].tolist() == ["s/1"]
    assert rows["cost_usd"].iloc[0] == pytest.approx(0.005)


def test_open_loop_turns_arrive_after_their_earlier_turn(
    wsim: SimProcess, write_config: Callable[..., Path], conversations: Path, tmp_path: Path
) -> None:
    # 50 requests/s would schedule every turn within 0.1 s; each later turn must
    # still wait for the row of the turn before it, and arrive only then.
    config = write_config(
        f"""
        run: {{name: chat, warmup_requests: 0}}
        providers:
          - {{name: chatty, model: openai/chatty, api_base: "{wsim.api_base}"}}
        suites:
          - name: own
            kind: chat
            dataset: {conversations}
            load: {{pattern: rate, levels: [50]}}
        """
    )
    root = tmp_path / "out"
    execute(load_config(config), out=root, run_id="o", show_progress=False)
    own = by_case(pd.read_parquet(root / "o"), "own")
    assert len(own) == 5 and all(r["status"] == "ok" for r in own.values())
    assert {r["load_level"] for r in own.values()} == {"rate=50"}
    for later, earlier in (("c1/2", "c1/1"), ("c2/2", "c2/1"), ("c2/3", "c2/2")):
        end = own[earlier]["sent_s"] + own[earlier]["e2e_s"]
        assert own[later]["scheduled_s"] >= end - 1e-3
        assert own[later]["sent_s"] >= own[later]["scheduled_s"]
    assert list(own["c2/3"]["chat_history"]) == ["blue", "yellow sure"]
