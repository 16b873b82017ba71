"""Chained requests (run/chains.py): worker shares keep chains whole; the scheduler's
bookkeeping; the prompt_cache mismatch rule."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from harness.request import RequestSpec
from harness.run.chains import Chains, chain_roots
from harness.run.executors.processes import split_phase
from harness.run.scheduler import Phase
from harness.suites import prompt_cache


def turn(conversation: str, n: int) -> RequestSpec:
    return RequestSpec(
        suite="s",
        suite_kind="chat",
        case_id=f"{conversation}/{n}",
        repeat=0,
        provider="p",
        messages=[{"role": "user", "content": "x"}],
        max_tokens=8,
        after=f"{conversation}/{n - 1}" if n > 1 else None,
    )


# Turn-major, as the chat suite plans: a1 b1 c1 a2 b2 a3
PLAN = [turn("a", 1), turn("b", 1), turn("c", 1), turn("a", 2), turn("b", 2), turn("a", 3)]


def test_chain_roots_point_at_each_conversations_first_turn() -> None:
    assert chain_roots(PLAN) == [0, 1, 2, 0, 1, 0]


def test_worker_shares_keep_every_conversation_whole() -> None:
    phase = Phase("p", PLAN, level=4.0)
    shares = [split_phase(phase, 2, k) for k in range(2)]
    cases = [[r.case_id for r in s.requests] for s in shares if s is not None]
    # Chains a and c go to worker 0 (roots 0 and 2), b to worker 1, in plan order.
    assert cases == [["a/1", "c/1", "a/2", "a/3"], ["b/1", "b/2"]]
    assert shares[0] is not None and shares[0].indices == [0, 2, 3, 5]


def test_a_plan_without_chains_is_split_round_robin_as_before() -> None:
    plain = [turn(f"c{i}", 1) for i in range(5)]
    share = split_phase(Phase("p", plain, level=2.0), 2, 1)
    assert share is not None and share.indices == [1, 3]


def test_a_missing_predecessor_fails_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="never produces"):
        Chains([turn("a", 2)])


def test_a_successor_gets_the_row_or_none() -> None:
    async def scenario() -> list[Any]:
        chains = Chains(PLAN)
        waiting = asyncio.create_task(chains.wait(PLAN[3]))  # a/2 waits for a/1
        await asyncio.sleep(0)
        assert not waiting.done()
        chains.finished(PLAN[0], {"status": "ok", "response_text": "hi"})
        chains.finished(PLAN[1], None)  # b/1 was never sent
        return [await waiting, await chains.wait(PLAN[4])]

    assert asyncio.run(scenario()) == [{"status": "ok", "response_text": "hi"}, None]


def cache_request(role: str) -> RequestSpec:
    return RequestSpec(
        suite="pc",
        suite_kind="prompt_cache",
        case_id=f"p0/{role}",
        repeat=0,
        provider="p",
        messages=[],
        max_tokens=8,
        meta={
            "prefix": "p0",
            "role": role,
            "salt": "a b c d",
            "prefix_count": 64,
            "tolerance": 0.15,
        },
    )


@pytest.mark.parametrize(
    ("role", "reported", "hit", "mismatch"),
    [
        # warm, 64 expected: 55 is 9 off, within 0.15 · 64 = 9.6; 54 is 10 off, outside.
        ("warm", 55, True, False),
        ("warm", 54, True, True),
        ("warm", 0, False, True),
        ("cold", 0, False, False),
        ("cold", 12, True, True),  # a cold request must not report cached tokens
        ("warm", None, None, None),  # no count reported: unknown, not a mismatch
    ],
)
def test_cache_mismatch_rule(role: str, reported: int | None, hit: Any, mismatch: Any) -> None:
    row = {"status": "ok", "cached_input_tokens": reported}
    out = prompt_cache.score(row, cache_request(role))
    assert (out["cache_hit"], out["cache_mismatch"]) == (hit, mismatch)
    assert out["cache_expected_tokens"] == (64 if role == "warm" else 0)


def test_a_prefix_of_n_words_is_n_tokens() -> None:
    from harness.cost.tokens import count_tokens

    for n in (16, 64, 1000):
        body = prompt_cache.prefix_body(n, f"0:{n}:0")
        text = " ".join(["the", *prompt_cache.new_salt(), *body])
        assert len(text.split()) == n
        assert count_tokens(text) == n
