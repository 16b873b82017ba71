"""How worker processes share a phase: every request exactly once, caps that hold."""

from __future__ import annotations

import itertools

import pytest

from harness.request import RequestSpec
from harness.run.executors.processes import fair_share, share_of
from harness.run.scheduler import Phase


def phase(n: int, pattern: str = "concurrency", level: float = 4.0) -> Phase:
    requests = [
        RequestSpec("s", "latency", f"c{i}", 0, "p", [{"role": "user", "content": "x"}], 8)
        for i in range(n)
    ]
    return Phase("p", requests, pattern, level, first_index=100)


@pytest.mark.parametrize(
    ("workers", "level", "global_cap", "provider_cap"),
    list(itertools.product([1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 16], [None, 1, 3])),
)
def test_every_request_once_and_caps_sum(
    workers: int, level: int, global_cap: int, provider_cap: int | None
) -> None:
    caps = {} if provider_cap is None else {"p": provider_cap}
    shares = [
        share_of(phase(10, level=level), workers, k, global_cap, caps) for k in range(workers)
    ]
    indices = sorted(i for s in shares if s is not None for i in (s.indices or []))
    # 10 planned requests numbered from 100: each sent by exactly one worker.
    assert indices == list(range(100, 110))
    # The closed loop's level is split, never multiplied: the workers' levels sum to it.
    assert sum(int(s.level or 0) for s in shares if s is not None) == level
    # Caps hold summed over the workers that got a share.
    busy = [k for k, s in enumerate(shares) if s is not None]
    assert sum(fair_share(global_cap, workers, k) for k in busy) <= global_cap
    if provider_cap is not None:
        assert sum(fair_share(provider_cap, workers, k) for k in busy) <= provider_cap
        assert all(fair_share(provider_cap, workers, k) >= 1 for k in busy)


def test_a_cap_of_one_puts_the_phase_on_one_worker() -> None:
    # concurrency: 1 with 2 workers used to give each worker a slot (2 in flight) and,
    # for a level of 1, dropped the second worker's half of the requests.
    shares = [share_of(phase(6, level=1), 2, k, 16, {"p": 1}) for k in range(2)]
    assert shares[1] is None
    assert shares[0] is not None and shares[0].indices == list(range(100, 106))
    assert shares[0].level == 1
    rate = [share_of(phase(6, "rate", 10.0), 2, k, 16, {"p": 1}) for k in range(2)]
    assert rate[1] is None and rate[0] is not None and rate[0].level == 10.0


def test_fair_share_sums_to_the_total() -> None:
    for total, workers in itertools.product(range(9), range(1, 5)):
        assert sum(fair_share(total, workers, k) for k in range(workers)) == total
