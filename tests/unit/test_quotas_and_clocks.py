"""The pieces of the ray executor that need no cluster: clock offsets, the coordinator's
leases and barriers, keys that travel by name, extra requests renumbered."""

from __future__ import annotations

import asyncio
import pickle

import pytest

from harness.cost.pricing import Price
from harness.providers.trace import Endpoint
from harness.request import RequestSpec
from harness.run.budget import Budget
from harness.run.executors.keys import KeySource, key_source, with_keys, without_keys
from harness.run.executors.sharding import Renumber
from harness.run.nodeclock import TOLERANCE_MS, estimate
from harness.run.quotas import Coordinator, LeasedBudget
from harness.run.scheduler import Phase


def test_the_fastest_round_trip_gives_the_offset() -> None:
    # (driver send, node stamp, driver receive). The second probe is fastest (RTT 2 ms):
    # offset = 100.0 - (10.000 + 10.002) / 2 = 89.999 s, known to within 1 ms.
    clock = estimate([(0.0, 90.5, 0.010), (10.0, 100.0, 10.002), (20.0, 110.1, 20.008)])
    assert clock.offset_s == pytest.approx(89.999)
    assert clock.uncertainty_s == pytest.approx(0.001)
    assert clock.ok
    assert clock.to_driver(100.0) == pytest.approx(10.001)
    assert clock.manifest() == {"offset_ms": 89999.0, "uncertainty_ms": 1.0, "clock_ok": True}
    # A node known only to within half of a 12 ms round trip (6 ms > 5 ms) is flagged.
    assert TOLERANCE_MS == 5.0
    assert not estimate([(0.0, 0.0, 0.012)]).ok
    with pytest.raises(ValueError):
        estimate([])


def _request(content: str = "one two three four") -> RequestSpec:
    return RequestSpec("s", "latency", "c", 0, "p", [{"role": "user", "content": content}], 32)


PRICE = Price(input=1000.0 / 1e6, output=2000.0 / 1e6, source="override")


def test_one_ledger_refuses_for_everyone_once_it_refused() -> None:
    coordinator = Coordinator(Budget(0.2, {"p": PRICE}, {}), {}, parties=[0, 1])
    assert coordinator.lease(0.15)
    assert not coordinator.lease(0.06)  # 0.15 + 0.06 > 0.2
    # Sticky: a smaller request would fit, but the run has stopped, as one process would.
    assert not coordinator.lease(0.01)
    coordinator.release(0.15, 0.05)
    state = coordinator.budget_state()
    assert state is not None and state["spent_usd"] == pytest.approx(0.05)
    assert state["reserved_usd"] == pytest.approx(0.0)
    assert state["stopped_reason"].startswith("budget:")


def test_a_leased_budget_reserves_the_worst_case_there_and_returns_the_cost() -> None:
    coordinator = Coordinator(Budget(1.0, {"p": PRICE}, {}), {}, parties=[0])

    class Local:
        async def lease(self, worst_usd: float, unpriced: bool) -> bool:
            return coordinator.lease(worst_usd, unpriced)

        async def release(self, reserved_usd: float, spent_usd: float) -> None:
            coordinator.release(reserved_usd, spent_usd)

        async def acquire(self, provider: str, tokens: int) -> float:
            return await coordinator.acquire(provider, tokens)

    async def go() -> None:
        budget = LeasedBudget(1.0, {"p": PRICE}, {}, Local())
        request = _request()
        worst = budget.worst_case(request)
        assert worst is not None and worst > 32 * 2000 / 1e6  # at least the output's
        assert await budget.reserve(request)
        assert coordinator.budget is not None
        assert coordinator.budget.reserved_usd == pytest.approx(worst)
        budget.settle(request, {"cost_usd": 0.028})
        await budget.flush()
        assert coordinator.budget.reserved_usd == pytest.approx(0.0)
        assert coordinator.budget.spent_usd == pytest.approx(0.028)
        with pytest.raises(TypeError):
            budget.try_reserve(request)

    asyncio.run(go())


def test_barriers_wait_for_every_party_and_not_for_one_that_left() -> None:
    async def go() -> None:
        coordinator = Coordinator(None, {}, parties=[0, 1, 2], lead_s=0.0)
        first = asyncio.create_task(coordinator.arrive(0, 0))
        second = asyncio.create_task(coordinator.arrive(0, 1))
        await asyncio.sleep(0.01)
        assert not first.done() and not second.done()  # party 2 has not arrived
        coordinator.leave(2)  # its actor is gone for good
        starts = await asyncio.gather(first, second)
        assert starts[0] == starts[1]
        # A replacement arriving late at a phase already started returns at once.
        assert await asyncio.wait_for(coordinator.arrive(0, 2), 1) == starts[0]

    asyncio.run(go())


def test_keys_travel_by_name_and_are_read_where_the_request_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "sk-unit-0123456789abcdefghij"
    monkeypatch.setenv("UNIT_KEY", secret)
    params = {"extra_headers": {"x-api-key": "${UNIT_KEY}"}}
    endpoint = Endpoint(
        "p", "openai/m", False, "http://h/v1", secret, {"extra_headers": {"x-api-key": secret}},
        30.0, secrets=(secret,),
    )  # fmt: skip
    source = key_source(endpoint, "UNIT_KEY", params)
    assert source == KeySource("UNIT_KEY", params)
    bare = without_keys(endpoint, source)
    assert secret.encode() not in pickle.dumps(bare) + pickle.dumps(source)
    sent = with_keys(bare, source, {"UNIT_KEY": "sk-node-value-0123456789abc"})
    assert sent.api_key == "sk-node-value-0123456789abc"
    assert sent.params == {"extra_headers": {"x-api-key": "sk-node-value-0123456789abc"}}
    assert set(sent.secrets) == {"sk-node-value-0123456789abc"}
    with pytest.raises(KeyError, match="UNIT_KEY"):
        with_keys(bare, source, {})
    # A placeholder key (a simulator's) is no secret: it travels as is.
    placeholder = Endpoint("p", "openai/m", True, "http://h/v1", "sim-no-key", {}, 30.0)
    assert key_source(placeholder, None, {}) is None
    assert without_keys(placeholder, None) is placeholder


def test_extra_requests_of_time_bounded_phases_get_one_number_each() -> None:
    phases = [
        Phase("p", [_request()] * 3, first_index=0),
        Phase("q", [_request()] * 2, first_index=3),
    ]
    renumber = Renumber(phases)
    assert renumber.planned_end == 5
    rows = [{"request_index": i} for i in (2, 5, 5, 6, 4)]  # two shares both numbered 5
    for row in rows:
        renumber(row)
    assert [r["request_index"] for r in rows] == [2, 5, 6, 7, 4]
