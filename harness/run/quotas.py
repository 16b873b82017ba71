"""Quotas that belong to a provider account, held by one coordinator for every sender.

``rpm``/``tpm`` and ``budget_usd`` limit an account, not a process: split N ways
they would either be exceeded (each sender at the full rate) or wasted (a sender
idle while another waits on its share). With several senders (Ray actors), one
:class:`Coordinator` holds the account's rate limiters and the budget ledger and
hands out leases: a request slot (and its tokens) of rate, and its worst-case
dollars of budget, which the sender returns with the real cost when the row
exists. The same coordinator lines the senders up before each phase.

The senders' side: :class:`LeasedBudget` (a :class:`~harness.run.budget.Budget`
whose ledger is the coordinator's) and :class:`LeasedLimiter` (a
:class:`~harness.run.limits.RateLimiter` whose buckets are). They talk to it
through a :class:`QuotaClient`, so this module knows nothing of Ray.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from harness.cost.pricing import Price
from harness.request import RequestSpec
from harness.run.budget import Budget, spent_of
from harness.run.limits import RateLimiter

PHASE_LEAD_S = 0.1
"""A phase starts this long after its last sender arrived, so that the news reaches
every sender before the start (they all start at the same instant, on their clocks)."""


class Coordinator:
    """The account's quotas and the phase barriers of one run (one instance per run)."""

    def __init__(
        self,
        budget: Budget | None,
        rates: Mapping[str, tuple[float | None, float | None]],
        parties: Iterable[int],
        lead_s: float = PHASE_LEAD_S,
    ):
        self.budget = budget
        self.limiters = {p: RateLimiter(rpm=r, tpm=t) for p, (r, t) in rates.items()}
        self.parties = set(parties)
        self.lead_s = lead_s
        self._arrived: dict[int, set[int]] = {}
        self._events: dict[int, asyncio.Event] = {}
        self._start_at: dict[int, float] = {}

    def clock(self) -> float:
        """This process's wall clock (for :func:`harness.run.nodeclock.measure`)."""
        return time.time()

    async def acquire(self, provider: str, tokens: int = 0) -> float:
        """A lease of one request (and ``tokens``) under the account's rpm/tpm; waits."""
        return await self.limiters[provider].acquire(tokens)

    def lease(self, worst_usd: float, unpriced: bool = False) -> bool:
        """A lease of ``worst_usd`` of the budget; once one is refused, every later one is
        (the run stops before the spend could pass the cap, as one process would)."""
        if self.budget is None:
            return True
        if self.budget.stopped_reason is not None:
            return False
        return self.budget.lease(worst_usd, unpriced=unpriced)

    def release(self, reserved_usd: float, spent_usd: float) -> None:
        """A lease returned, with what the request really cost."""
        if self.budget is not None:
            self.budget.release(reserved_usd, spent_usd)

    def budget_state(self) -> dict[str, Any] | None:
        """The ledger, for the driver's :class:`Budget` (the manifest reads it)."""
        if self.budget is None:
            return None
        b = self.budget
        return {
            "spent_usd": b.spent_usd,
            "reserved_usd": b.reserved_usd,
            "unpriced_requests": b.unpriced_requests,
            "stopped_reason": b.stopped_reason,
        }

    async def arrive(self, key: int, party: int) -> float:
        """Wait until every party has arrived at phase ``key``; returns when it starts
        (this process's wall clock). A party arriving late (a replacement) returns at once."""
        self._arrived.setdefault(key, set()).add(party)
        event = self._events.setdefault(key, asyncio.Event())
        self._check(key)
        await event.wait()
        return self._start_at[key]

    def leave(self, party: int) -> None:
        """``party`` will arrive nowhere any more (its sender is gone for good)."""
        self.parties.discard(party)
        for key in list(self._events):
            self._check(key)

    def _check(self, key: int) -> None:
        event = self._events.get(key)
        if event is None or event.is_set() or not self.parties <= self._arrived.get(key, set()):
            return
        self._start_at[key] = time.time() + self.lead_s
        event.set()


class QuotaClient(Protocol):
    """How a sender reaches the :class:`Coordinator` (over Ray, say)."""

    async def lease(self, worst_usd: float, unpriced: bool) -> bool: ...

    async def release(self, reserved_usd: float, spent_usd: float) -> None: ...

    async def acquire(self, provider: str, tokens: int) -> float: ...


class LeasedBudget(Budget):
    """A budget whose ledger is the coordinator's: the worst case is computed here, the
    dollars leased there; the real cost goes back when the row exists."""

    def __init__(
        self,
        limit_usd: float,
        prices: Mapping[str, Price],
        judge_prices: Mapping[str, Price],
        client: QuotaClient,
    ):
        super().__init__(limit_usd, prices, judge_prices)
        self.client = client
        self._returns: set[asyncio.Task[None]] = set()

    def try_reserve(self, request: RequestSpec) -> bool:
        raise TypeError("a leased budget is asked with `await reserve(request)`")

    async def reserve(self, request: RequestSpec) -> bool:
        worst = self.worst_case(request)
        self.unpriced_requests += worst is None
        if not await self.client.lease(worst or 0.0, worst is None):
            self.stopped_reason = "budget: the run's coordinator refused the next lease"
            return False
        self._reservations[id(request)] = worst or 0.0
        return True

    def settle(self, request: RequestSpec, row: Mapping[str, Any]) -> None:
        # Called synchronously by the scheduler: the return travels in the background;
        # :meth:`flush` waits for every one before the sender says it is done.
        reserved = self._reservations.pop(id(request), 0.0)
        spent = spent_of(row)
        self.spent_usd += spent
        task = asyncio.get_running_loop().create_task(self.client.release(reserved, spent))
        self._returns.add(task)
        task.add_done_callback(self._returns.discard)

    async def flush(self) -> None:
        """Wait until every lease returned has reached the coordinator."""
        while self._returns:
            await asyncio.gather(*list(self._returns), return_exceptions=True)


class LeasedLimiter(RateLimiter):
    """A provider's rate limiter whose buckets are the coordinator's (account-wide)."""

    def __init__(self, client: QuotaClient, provider: str, rpm: float | None, tpm: float | None):
        super().__init__(rpm, tpm)  # the scheduler reads tpm: tokens are counted only then
        self.client = client
        self.provider = provider

    async def acquire(self, tokens: int = 0) -> float:
        """Wait for the account's lease of one request and ``tokens``."""
        return await self.client.acquire(self.provider, tokens)


class SharedLedger:
    """The budget part of a :class:`Coordinator`, safe to call from many threads: what a
    :mod:`multiprocessing` manager serves to worker processes (one thread per caller)."""

    def __init__(self, budget: Budget):
        self._coordinator = Coordinator(budget, {}, ())
        self._lock = threading.Lock()

    def lease(self, worst_usd: float, unpriced: bool = False) -> bool:
        with self._lock:
            return self._coordinator.lease(worst_usd, unpriced)

    def release(self, reserved_usd: float, spent_usd: float) -> None:
        with self._lock:
            self._coordinator.release(reserved_usd, spent_usd)

    def budget_state(self) -> dict[str, Any] | None:
        with self._lock:
            return self._coordinator.budget_state()


class ThreadedQuotas:
    """A :class:`QuotaClient` over a blocking ledger (a manager's proxy of
    :class:`SharedLedger`): each call in a thread, so the event loop never blocks on it."""

    def __init__(self, ledger: Any):
        self.ledger = ledger

    async def lease(self, worst_usd: float, unpriced: bool) -> bool:
        return bool(await asyncio.to_thread(self.ledger.lease, worst_usd, unpriced))

    async def release(self, reserved_usd: float, spent_usd: float) -> None:
        await asyncio.to_thread(self.ledger.release, reserved_usd, spent_usd)

    async def acquire(self, provider: str, tokens: int) -> float:
        raise NotImplementedError("worker processes pace with their share of rpm/tpm")


def apply_state(budget: Budget, state: Mapping[str, Any] | None) -> None:
    """Copy a ledger's final state (``budget_state``) into the driver's budget, which the
    manifest reads."""
    if state is None:
        return
    budget.spent_usd = state["spent_usd"]
    budget.reserved_usd = state["reserved_usd"]
    budget.unpriced_requests = state["unpriced_requests"]
    budget.stopped_reason = state["stopped_reason"]
