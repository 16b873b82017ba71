"""The response cache never stands in for a measurement (against the simulator).

Latency, load and cost suites are always sent; a quality suite's key includes the
repeat; a run never serves its own answers back; cached rows are left out of every
latency statistic; a cached answer keeps its verdict only for the identical judge call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from harness.cli import main
from harness.cost.pricing import UNKNOWN_PRICE
from harness.providers.trace import Endpoint
from harness.report.summary import load_summary
from harness.request import RequestSpec
from harness.run.budget import Budget
from harness.run.cache import ResponseCache, cache_key
from harness.sim import SimProcess

from ..conftest import TEST_DATA, sim_requests

SQUAD_SAMPLE = TEST_DATA / "squad-v2" / "sample-200.jsonl"


def _run(config: Path, out: Path, *extra: str) -> pd.DataFrame:
    result = CliRunner().invoke(
        main, ["run", str(config), "--out", str(out), "--no-progress", *extra]
    )
    assert result.exit_code == 0, result.output
    return pd.read_parquet(out).sort_values("request_index").reset_index(drop=True)


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*/*.json"))


def test_latency_load_and_cost_suites_are_always_measured(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    config = write_config(
        f"""
        run: {{name: measured, concurrency: 2, response_cache: "{cache}"}}
        providers:
          - {{name: steady, model: openai/steady, api_base: "{sim.api_base}"}}
        suites:
          - {{name: lat, kind: latency, prompts: ["a b", "c d"], requests: 20, max_tokens: 8}}
          - {{name: qa-load, kind: rag_qa, dataset: "{SQUAD_SAMPLE}", limit: 3,
              load: {{levels: [2]}}}}
          - {{name: costs, kind: cost, tasks: [{{id: t1, prompt: "Sum 2 and 2."}}], repeats: 2}}
        """
    )
    # One run sends 20 latency + 3 rag_qa (in a load phase) + 2 cost requests + 1 warm-up = 26.
    before = sim_requests(sim)
    first = _run(config, tmp_path / "first")
    after_first = sim_requests(sim)
    second = _run(config, tmp_path / "second")
    assert after_first - before == 26
    assert sim_requests(sim) - after_first == 26  # the second run sent every request again
    for rows in (first, second):
        assert len(rows) == 25
        assert not rows["from_cache"].fillna(False).any()
        assert rows["ttft_s"].notna().all() and rows["e2e_s"].notna().all()
        assert rows["clock_ok"].notna().all()
    assert _entries(cache) == []  # nothing of these suites was even stored


def test_quality_suite_is_cached_per_repeat_and_kept_out_of_latency(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"

    def config(limit: int, name: str) -> Path:
        return write_config(
            f"""
            run: {{name: qa, response_cache: "{cache}"}}
            providers:
              - {{name: steady, model: openai/steady, api_base: "{sim.api_base}"}}
            suites:
              - {{name: qa, kind: rag_qa, dataset: "{SQUAD_SAMPLE}", limit: {limit}, repeats: 5}}
            """,
            name=name,
        )

    four, six = config(4, "four.yaml"), config(6, "six.yaml")
    before = sim_requests(sim)
    first = _run(four, tmp_path / "first")
    # Each (case, repeat) is sent: 4 cases × 5 repeats = 20, + 1 warm-up.
    assert sim_requests(sim) - before == 21
    assert not first["from_cache"].fillna(False).any()
    assert len(_entries(cache)) == 20  # one entry per (case, repeat)

    before = sim_requests(sim)
    second = _run(four, tmp_path / "second")
    assert sim_requests(sim) - before == 1  # only the unrecorded warm-up went out
    assert second["from_cache"].all()
    assert second["ttft_s"].isna().all() and second["clock_ok"].isna().all()
    key = ["case_id", "repeat"]
    assert (
        second.set_index(key)["response_text"].sort_index().tolist()
        == first.set_index(key)["response_text"].sort_index().tolist()
    )
    _, _, table = load_summary(tmp_path / "second")
    line = table.iloc[0]
    assert line["requests"] == 20
    for column in ("ttft_p50_ms", "e2e_p95_ms", "throughput_rps", "output_tokens_per_s"):
        assert pd.isna(line[column]), column
    assert abs(line["exact_match_abstain"] - first["exact_match_abstain"].mean()) < 1e-12

    # A mixed run: 4 cached cases × 5 repeats, 2 new cases × 5 repeats sent.
    before = sim_requests(sim)
    mixed = _run(six, tmp_path / "mixed")
    assert sim_requests(sim) - before == 11  # 10 new + 1 warm-up
    timed = mixed[~mixed["from_cache"].astype(bool)]
    assert len(timed) == 10 and mixed["from_cache"].sum() == 20
    _, _, table = load_summary(tmp_path / "mixed")
    line = table.iloc[0]
    # Throughput counts only the 10 measured requests over their own span.
    span = (
        (timed["started_at"] + pd.to_timedelta(timed["e2e_s"], unit="s")).max()
        - timed["started_at"].min()
    ).total_seconds()
    assert abs(line["throughput_rps"] - 10 / span) < 1e-9
    # 10 values: the median is the mean of the 5th and 6th smallest.
    middle = np.sort(timed["ttft_s"].to_numpy())[4:6]
    assert abs(line["ttft_p50_ms"] - (middle[0] + middle[1]) / 2 * 1000) < 1e-9


def test_a_run_never_serves_its_own_answers_back(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    # Two suites with identical requests in one run: the second is not served from the first.
    config = write_config(
        f"""
        run: {{name: twice, response_cache: "{cache}"}}
        providers:
          - {{name: steady, model: openai/steady, api_base: "{sim.api_base}"}}
        suites:
          - {{name: qa1, kind: rag_qa, dataset: "{SQUAD_SAMPLE}", limit: 3}}
          - {{name: qa2, kind: rag_qa, dataset: "{SQUAD_SAMPLE}", limit: 3}}
        """
    )
    before = sim_requests(sim)
    rows = _run(config, tmp_path / "out")
    assert sim_requests(sim) - before == 7  # 3 + 3 + 1 warm-up
    assert not rows["from_cache"].fillna(False).any()
    assert len(_entries(cache)) == 3  # the same three keys, written twice


def test_entries_remember_their_run_and_the_repeat(tmp_path: Path) -> None:
    endpoint = Endpoint("p", "openai/x", False, "http://127.0.0.1:9/v1", None, {}, 10.0)
    request = RequestSpec("qa", "rag_qa", "c1", 0, "p", [{"role": "user", "content": "q"}], 8)
    row = {"status": "ok", "response_text": "a", "output_tokens": 1, "cost_usd": 0.5}
    ResponseCache(tmp_path, "run-a").put(endpoint, request, row)
    assert ResponseCache(tmp_path, "run-a").get(endpoint, request) is None  # its own answer
    hit = ResponseCache(tmp_path, "run-b").get(endpoint, request)
    assert hit is not None and hit.row["response_text"] == "a" and hit.row["from_cache"]
    assert hit.row["cost_usd"] == 0.5 and hit.row["ttft_s"] is None
    repeat1 = RequestSpec("qa", "rag_qa", "c1", 1, "p", request.messages, 8)
    assert cache_key(endpoint, repeat1) != cache_key(endpoint, request)
    assert ResponseCache(tmp_path, "run-b").get(endpoint, repeat1) is None
    stored = json.loads(next(tmp_path.glob("*/*.json")).read_text())
    assert stored["run_id"] == "run-a"


def test_budget_pays_a_fresh_verdict_on_a_cached_answer() -> None:
    request = RequestSpec("qa", "rag_qa", "c1", 0, "p", [{"role": "user", "content": "q"}], 8)
    budget = Budget(1.0, {"p": UNKNOWN_PRICE}, {})
    # Answer replayed (its 0.25 not bought again), verdict fetched again for 0.125.
    budget.settle(
        request,
        {"from_cache": True, "cost_usd": 0.25, "judge_cost_usd": 0.125, "judge_from_cache": False},
    )
    # Answer and verdict both replayed: nothing spent.
    budget.settle(
        request,
        {"from_cache": True, "cost_usd": 0.25, "judge_cost_usd": 0.125, "judge_from_cache": True},
    )
    # A measured row with a verdict: 0.25 + 0.125.
    budget.settle(request, {"cost_usd": 0.25, "judge_cost_usd": 0.125})
    assert budget.spent_usd == 0.125 + 0.25 + 0.125


def test_cached_answers_keep_their_verdict_only_for_the_same_judge_call(
    sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"

    def config(temperature: float, name: str) -> Path:
        return write_config(
            f"""
            run: {{name: judged, response_cache: "{cache}"}}
            providers:
              - {{name: steady, model: openai/steady, api_base: "{sim.api_base}"}}
            suites:
              - name: qa
                kind: rag_qa
                dataset: "{SQUAD_SAMPLE}"
                limit: 3
                judge: {{model: openai/fast, api_base: "{sim.api_base}",
                         params: {{temperature: {temperature}}}}}
            """,
            name=name,
        )

    cold, warm = config(0, "cold.yaml"), config(0.5, "warm.yaml")
    before = sim_requests(sim)
    first = _run(cold, tmp_path / "first")
    assert sim_requests(sim) - before == 7  # 3 answers + 3 verdicts + 1 warm-up
    assert first["judge_correctness"].notna().all()
    assert not first["judge_from_cache"].fillna(False).any()

    before = sim_requests(sim)
    second = _run(cold, tmp_path / "second")
    assert sim_requests(sim) - before == 1  # same judge call: verdicts replayed, warm-up only
    assert second["from_cache"].all() and second["judge_from_cache"].all()
    assert second["judge_correctness"].tolist() == first["judge_correctness"].tolist()

    before = sim_requests(sim)
    third = _run(warm, tmp_path / "third")
    assert sim_requests(sim) - before == 4  # another judge call: 3 verdicts again + warm-up
    assert third["from_cache"].all()
    assert (third["judge_from_cache"] == False).all()  # noqa: E712
    assert third["judge_correctness"].notna().all()

    before = sim_requests(sim)
    _run(warm, tmp_path / "fourth")  # the new verdicts replaced the old ones
    assert sim_requests(sim) - before == 1
