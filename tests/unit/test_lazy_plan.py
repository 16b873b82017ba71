"""The lazy plan (run/lazy.py): a generated phase yields exactly the requests the listed
plan held, in the same order with the same ``request_index``; shares, resume, the dry
run and the budget agree; and planning N requests holds memory that does not grow with N."""

from __future__ import annotations

import gc
import json
import os
import pickle
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.config.spec import RunSpec, load_config
from harness.cost.pricing import Price
from harness.request import RequestSpec
from harness.run.budget import dry_run, recovered_spend
from harness.run.executors.sharding import Renumber, share_of, split_phase
from harness.run.lazy import IndexSet, PlannedRequests, is_lazy, phase_pairs
from harness.run.plan import SuiteStream, build_plan, remaining
from harness.run.scheduler import Phase

REPO = Path(__file__).resolve().parents[2]
EAGER = 10**9  # lazy_min: no phase is generated (the plan as it was: every request listed)


def several(write_config: Callable[..., Path]) -> RunSpec:
    """Several suites (a sweep with warm-ups, seeded synthetic prompts at two Poisson
    rates, rag_qa with repeats, a chained chat suite), three providers."""
    return load_config(
        write_config(
            f"""
            run: {{name: lazy, concurrency: 8}}
            providers:
              - {{name: a, simulate: {{ttft_ms: 0}}, pricing: {{input_per_mtok: 1, output_per_mtok: 2}}}}
              - {{name: b, simulate: {{ttft_ms: 0}}, pricing: {{input_per_mtok: 3, output_per_mtok: 4}}}}
              - {{name: c, simulate: {{ttft_ms: 0}}}}
            suites:
              - name: swept
                kind: latency
                prompts: ["one", "two", "three"]
                requests: 7
                load: {{pattern: concurrency, levels: [1, 2, 4], warmup: 1}}
              - name: rates
                kind: latency
                synthetic: {{input_tokens: 12, output_tokens: {{dist: uniform, min: 4, max: 9}}, count: 3}}
                requests: 5
                load: {{pattern: poisson, levels: [5, 10]}}
              - {{name: rag, kind: rag_qa, dataset: {REPO}/suites/rag_qa/acme_kb.jsonl, repeats: 2,
                 max_tokens: 16}}
              - {REPO}/suites/chat/support.yaml
            """
        )
    )


def pairs(plan: list[Phase]) -> list[list[tuple[int, RequestSpec]]]:
    return [list(phase_pairs(p)) for p in plan]


def shape(phase: Phase) -> tuple[Any, ...]:
    return (
        phase.provider,
        phase.pattern,
        phase.level,
        phase.duration_s,
        phase.seed,
        phase.first_index,
        phase.burstiness,
        phase.ramp_to,
        phase.offsets,
        len(phase.requests),
    )


def test_a_lazy_plan_yields_exactly_the_listed_plans_requests(
    write_config: Callable[..., Path],
) -> None:
    spec = several(write_config)
    eager, lazy = build_plan(spec, lazy_min=EAGER), build_plan(spec, lazy_min=0)
    assert all(isinstance(p.requests, list) for p in eager)
    assert all(is_lazy(p) for p in lazy)
    # 3 providers × (swept 3 levels + rates 2 + rag 1 + chat 1) = 21 phases, suite-major.
    assert len(lazy) == len(eager) == 21
    assert [shape(p) for p in lazy] == [shape(p) for p in eager]
    assert pairs(lazy) == pairs(eager)  # indices, every field of every spec, the order
    # Iterating twice regenerates the same requests (a time-bounded phase cycles so).
    assert pairs(lazy) == pairs(eager)
    # A later sweep level is planned on its own (not by running through the earlier
    # levels), and that was checked to give the same requests.
    third = lazy[2].requests
    assert isinstance(third, PlannedRequests) and isinstance(third.source, SuiteStream)
    assert third.source.start == 0 and third.source.suite.load is not None
    assert third.source.suite.load.levels == [4]
    # Only the chat phases (the last suite's, one per provider) have chains: the others
    # are never walked looking for them.
    chained = [p.requests.chained for p in lazy if isinstance(p.requests, PlannedRequests)]
    assert chained == [False] * 18 + [True] * 3


def test_a_small_sweep_by_hand(write_config: Callable[..., Path]) -> None:
    spec = load_config(
        write_config(
            """
            providers:
              - {name: a, simulate: {ttft_ms: 0}}
              - {name: b, simulate: {ttft_ms: 0}}
            suites:
              - name: s
                kind: latency
                prompts: ["x", "y"]
                requests: 3
                load: {pattern: concurrency, levels: [1, 2], warmup: 1}
            """
        )
    )
    got = [
        (i, r.provider, r.load_level, r.case_id, r.repeat, r.warmup)
        for phase in build_plan(spec, lazy_min=0)
        for i, r in phase_pairs(phase)
    ]
    # Per provider (a, then b) and level (c=1, then c=2): 1 warm-up + 3 requests;
    # request i sends prompt i mod 2, repeat i // 2. Indices run through the whole plan.
    level = [("prompt-0", 0, True), ("prompt-1", 0, False), ("prompt-0", 1, False)]
    level.append(("prompt-1", 1, False))
    expected = [
        (n, provider, label, *request)
        for n, (provider, label, request) in enumerate(
            (p, lv, r) for p in "ab" for lv in ("c=1", "c=2") for r in level
        )
    ]
    assert got == expected
    assert expected[4] == (4, "a", "c=2", "prompt-0", 0, True)  # hand check of the formula
    assert expected[15] == (15, "b", "c=2", "prompt-1", 1, False)


def test_shares_resume_and_their_shares_agree_with_the_listed_plan(
    write_config: Callable[..., Path],
) -> None:
    spec = several(write_config)
    eager, lazy = build_plan(spec, lazy_min=EAGER), build_plan(spec, lazy_min=0)
    finished = set(range(0, 400, 3)) | {5, 8}
    resumed_eager, resumed_lazy = remaining(eager, finished), remaining(lazy, finished)
    assert pairs(resumed_lazy) == pairs(resumed_eager)
    assert [len(p.requests) for p in resumed_lazy] == [len(p.requests) for p in resumed_eager]
    assert not {i for ps in pairs(resumed_lazy) for i, _ in ps} & finished
    for plans in ((eager, lazy), (resumed_eager, resumed_lazy)):
        for workers in (2, 3):
            for e, lz in zip(*plans, strict=True):
                shares = []
                for k in range(workers):
                    # split_phase as such, and share_of (fewer shares under a cap).
                    se, sl = split_phase(e, workers, k), split_phase(lz, workers, k)
                    assert (se is None) == (sl is None)
                    if se is not None and sl is not None:
                        assert list(phase_pairs(sl)) == list(phase_pairs(se))
                    se, sl = share_of(e, workers, k, 8, {}), share_of(lz, workers, k, 8, {})
                    assert (se is None) == (sl is None)
                    if se is not None and sl is not None:
                        assert list(phase_pairs(sl)) == list(phase_pairs(se))
                        assert len(sl.requests) == len(se.requests)
                        assert (sl.level, sl.seed, sl.start_offset_s) == (
                            se.level,
                            se.seed,
                            se.start_offset_s,
                        )
                        shares += [i for i, _ in phase_pairs(sl)]
                # Every request in exactly one share.
                assert sorted(shares) == [i for i, _ in phase_pairs(lz)]
            # Renumbering starts past every planned index, as it did.
            assert Renumber(plans[1]).planned_end >= Renumber(plans[0]).planned_end


def test_a_pickled_share_regenerates_the_same_requests_in_another_process(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    spec = several(write_config)
    lazy = build_plan(spec, lazy_min=0)
    # Share 1 of 2 of a sweep level (c=2), and of a provider's chat conversations (chained).
    shares = [share_of(p, 2, 1, concurrency=8, provider_concurrency={}) for p in lazy[1::19]]
    assert all(share is not None and is_lazy(share) for share in shares)
    blob = tmp_path / "share.pickle"
    blob.write_bytes(pickle.dumps(shares))
    assert len(blob.read_bytes()) < 40_000  # suite configs and steps, not the requests
    script = (
        "import json, pickle, sys\n"
        "from harness.run.lazy import phase_pairs\n"
        "shares = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "print(json.dumps([[i, r.case_id, r.repeat, r.load_level, r.messages]"
        " for share in shares for i, r in phase_pairs(share)]))\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")  # a worker's own hash seed
    out = subprocess.run(
        [sys.executable, "-c", script, str(blob)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    here = [
        [i, r.case_id, r.repeat, r.load_level, r.messages]
        for share in shares
        if share is not None
        for i, r in phase_pairs(share)
    ]
    assert json.loads(out) == here
    assert {r[3] for r in here} == {"c=2", None} and any("/" in r[1] for r in here)


def test_the_dry_run_count_and_budget_agree(write_config: Callable[..., Path]) -> None:
    spec = several(write_config)
    eager, lazy = build_plan(spec, lazy_min=EAGER), build_plan(spec, lazy_min=0)
    prices = {
        "a": Price(input=1e-6, output=2e-6, source="override"),
        "b": Price(input=3e-6, output=4e-6, source="override"),
        "c": Price(),
    }
    assert dry_run(lazy, prices, {}) == dry_run(eager, prices, {})
    assert recovered_spend(1.0, lazy, prices, 2, 1) == recovered_spend(1.0, eager, prices, 2, 1)
    assert sum(len(p.requests) for p in lazy) == sum(len(p.requests) for p in eager)


def test_a_lazy_request_sequence_indexes_and_slices_like_a_list(
    write_config: Callable[..., Path],
) -> None:
    spec = several(write_config)
    (eager, *_), (lazy, *_) = build_plan(spec, lazy_min=EAGER), build_plan(spec, lazy_min=0)
    listed, generated = eager.requests, lazy.requests
    assert isinstance(listed, list) and isinstance(generated, PlannedRequests)
    assert generated[0] == listed[0] and generated[-1] == listed[-1]
    assert generated[2:5] == listed[2:5] and generated[:1] == listed[:1]
    assert list(generated) == listed and len(generated) == len(listed) == 8


def test_index_set_is_a_bitmap_of_seen_indices() -> None:
    seen = IndexSet()
    for i in (0, 7, 8, 1000, 7):
        seen.add(i)
    assert [i in seen for i in (0, 1, 7, 8, 9, 999, 1000, 5000, -1)] == [
        True,
        False,
        True,
        True,
        False,
        False,
        True,
        False,
        False,
    ]
    assert len(seen) == 4  # 7 twice counts once
    # {0, 7, 8, 1000}: [0, 8) holds 0 and 7; [7, 9) holds 7 and 8; [1, 7) none; [8, 1001)
    # holds 8 and 1000; a range past both ends, all four.
    assert [seen.count_in(lo, hi) for lo, hi in ((0, 8), (7, 9), (1, 7), (8, 1001))] == [2, 2, 0, 2]
    assert seen.count_in(-5, 5000) == 4 and seen.count_in(9, 9) == 0
    assert IndexSet.of([3, 3, 9]).count_in(0, 10) == 2
    snapshot = seen.copy()
    seen.add(3)
    assert 3 in seen and 3 not in snapshot


def _planning_peak(write_config: Callable[..., Path], per_provider: int) -> tuple[int, int]:
    """tracemalloc's peak (bytes) while planning ``2 × per_provider`` requests (every phase
    generated) and iterating every one of them and a worker's share; and their number."""
    spec = load_config(
        write_config(
            f"""
            providers:
              - {{name: a, simulate: {{ttft_ms: 0}}}}
              - {{name: b, simulate: {{ttft_ms: 0}}}}
            suites:
              - name: s
                kind: latency
                prompts: ["Say hello.", "Name three colours.", "Capital of France?"]
                requests: {per_provider // 2}
                load: {{pattern: concurrency, levels: [16, 32]}}
            """,
            name=f"c{per_provider}.yaml",
        )
    )
    build_plan(spec, lazy_min=0)  # imports and one-off caches before measuring
    gc.collect()
    tracemalloc.start()
    try:
        plan = build_plan(spec, lazy_min=0)
        n = sum(1 for phase in plan for _ in phase_pairs(phase))
        share = split_phase(plan[-1], 2, 1)
        assert share is not None
        n_share = sum(1 for _ in phase_pairs(share))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert all(is_lazy(p) for p in plan) and n_share == per_provider // 4
    return peak, n


def test_planning_memory_does_not_grow_with_the_number_of_requests(
    write_config: Callable[..., Path],
) -> None:
    small, n_small = _planning_peak(write_config, 5_000)
    big, n_big = _planning_peak(write_config, 50_000)
    assert (n_small, n_big) == (10_000, 100_000)
    # Listed, 100,000 requests held 100,000 RequestSpecs of ~750 bytes each (the issue's
    # measure): 75 MB. Generated, the plan holds 4 phases of a few numbers and a suite
    # config each; counting and iterating hold one request at a time (~1 kB with its
    # messages) and the planner's three prompts; a share adds one step. So 10× the
    # requests may add no more than 64 kB (allocator noise: dict resizes), and the peak
    # stays under 512 kB, 150× below the listed plan. (A run's default threshold also
    # lists a phase's first LAZY_MIN_REQUESTS while counting: a constant ~2.5 MB;
    # benchmarks/run_rss.py --plan-only measures the whole at a million requests.)
    assert big - small < 64 * 1024, (small, big)
    assert big < 512 * 1024, big


def test_a_capacity_searchs_levels_are_its_templates_requests_relabelled(
    write_config: Callable[..., Path],
) -> None:
    import asyncio
    import itertools

    from harness.run.capacity import search_capacity

    spec = load_config(
        write_config(
            """
            providers:
              - {name: a, simulate: {ttft_ms: 0}}
            suites:
              - name: search
                kind: latency
                prompts: ["one", "two"]
                requests: 5
                load: {pattern: capacity, arrivals: rate, slo: {ttft_ms: 100}, start: 4,
                       max_rate: 8, warmup: 1}
            """
        )
    )

    def levels(plan: list[Phase]) -> list[list[tuple[int, RequestSpec]]]:
        (template,) = plan
        counter = itertools.count(100)  # the scheduler's: past every planned index
        seen: list[list[tuple[int, RequestSpec]]] = []

        async def run_level(level: Phase, watch: Callable[[dict[str, Any]], None]) -> None:
            seen.append(list(phase_pairs(level)))
            for _, r in phase_pairs(level):  # every request met its SLO: the search goes up
                watch({"status": "ok", "warmup": r.warmup, "ttft_s": 0.001, "e2e_s": 0.002})

        asyncio.run(search_capacity(template, run_level, lambda: next(counter), lambda: False))
        return seen

    eager, lazy = levels(build_plan(spec, lazy_min=EAGER)), levels(build_plan(spec, lazy_min=0))
    assert lazy == eager
    # Levels 4 and 8 req/s (start, then ×2 up to max_rate), 6 requests each, numbered on.
    assert [[i for i, _ in level] for level in lazy][:2] == [
        [100, 101, 102, 103, 104, 105],
        [106, 107, 108, 109, 110, 111],
    ]
    assert {r.load_level for r in (p[1] for p in lazy[0])} == {"capacity=4"}
