"""One run sharded over a Ray cluster: async actors send, the driver journals.

The driver (this process) builds the one plan and splits it as the processes
executor does (:mod:`~harness.run.executors.sharding`): every request keeps its
``request_index``; constant-rate shares are offset so their union is the
requested rate; Poisson shares are independent streams of rate R/N. Each share
goes to an async actor (:class:`ShardWorker`) with its own event loop,
transports and clock monitor, and at most ``streams_per_actor`` requests in
flight.

One coordinator actor (:class:`~harness.run.quotas.Coordinator`, placed on the
driver's node) holds what belongs to the provider account: the rpm/tpm buckets
and the budget ledger, leased to the actors request by request, so the limits
hold however many actors there are. It also lines the actors up before each
phase and names the instant the phase starts, which every actor converts to its
own clock with its measured offset (:mod:`harness.run.nodeclock`).

Rows stream back in small batches (the driver long-polls each actor) and go to
the driver's sink: the same journal and parts as a local run. Each row says
``executor = "ray"``, its ``node`` (``host/node id``) and ``actor``; its
``started_at`` is on the driver's clock, its durations are the sending node's.

Faults: an actor found dead has its unfinished planned requests re-sent once, by
a new actor that takes its place (in its phases, at its barriers); if that one
dies too they become ``worker_lost`` error rows. A row is delivered once per
``request_index``. Ctrl-C stops every actor, which records its in-flight
requests as cancelled; every finished row is kept.

Keys: actors get endpoints without secrets and read them from their own
environment (:mod:`~harness.run.executors.keys`; docs/scale.md says how to set
them on a cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from harness.config.spec import RaySettings
from harness.errors import HarnessError
from harness.request import RequestSpec, Row, request_identity
from harness.run.executors import Job, Notify, stamp
from harness.run.executors.keys import KeySource, with_keys, without_keys
from harness.run.executors.sharding import (
    Renumber,
    idle_share,
    keyed,
    merge_outcome,
    shard_job,
)
from harness.run.lazy import IndexSet, Skip, is_lazy, phase_pairs, with_step
from harness.run.limits import RateLimiter
from harness.run.nodeclock import NodeClock, measure
from harness.run.quotas import Coordinator, LeasedBudget, LeasedLimiter, apply_state
from harness.run.scheduler import Phase, RunOutcome

LOST = "worker_lost"
"""``error_type`` of a planned request whose actor died twice (or could not be replaced)."""
BATCH_ROWS = 256  # rows per batch that comes home
DRAIN_WAIT_S = 0.05  # an actor with no row answers the driver's poll after this
STOP_GRACE_S = 20.0  # after Ctrl-C, how long the driver waits for the actors' last rows
NAMESPACE = "harness"


class RayExecutor:
    """Runs the job on a Ray cluster (see the module docstring)."""

    def __init__(self, settings: RaySettings):
        self.settings = settings

    def run(
        self, job: Job, sink: Callable[[Row], None], notify: Notify | None = None
    ) -> RunOutcome:
        """See :class:`~harness.run.executors.Executor`. Connects to ``settings.address``
        unless Ray is already initialised in this process (then uses that cluster)."""
        import ray

        started = False
        if not ray.is_initialized():
            try:
                ray.init(
                    address=self.settings.address,
                    namespace=NAMESPACE,
                    include_dashboard=False,
                    logging_level=logging.WARNING,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise HarnessError(
                    f"cannot reach the Ray cluster at {self.settings.address or 'local'}: {exc}"
                ) from None
            started = True
        try:
            return _Driver(job, sink, self.settings).run()
        finally:
            if started:
                ray.shutdown()


@dataclass
class ShardPayload:
    """What one actor is sent: its share (no secret in it), and how to reach the rest."""

    slot: int  # the share (and the barrier party) this actor sends
    actor: int  # this actor's number (a replacement gets a new one)
    job: Job
    coordinator: Any  # the Coordinator's actor handle
    clock: NodeClock  # this actor's node's clock minus the driver's
    coordinator_clock: NodeClock
    node: str
    key_sources: dict[str, KeySource] = field(default_factory=dict)
    rates: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    budget: LeasedBudget | None = None


class _RayQuotas:
    """The :class:`~harness.run.quotas.QuotaClient` of an actor: calls to the coordinator."""

    def __init__(self, coordinator: Any):
        self.coordinator = coordinator

    async def lease(self, worst_usd: float, unpriced: bool) -> bool:
        return bool(await self.coordinator.lease.remote(worst_usd, unpriced))

    async def release(self, reserved_usd: float, spent_usd: float) -> None:
        await self.coordinator.release.remote(reserved_usd, spent_usd)

    async def acquire(self, provider: str, tokens: int) -> float:
        return float(await self.coordinator.acquire.remote(provider, tokens))

    async def arrive(self, key: int, party: int) -> float:
        return float(await self.coordinator.arrive.remote(key, party))


def node_name() -> str:
    """``host/node id`` (its first 8 hex digits): two nodes may share a host name."""
    import ray

    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"


class _Coordinator(Coordinator):
    """The coordinator as a Ray actor: it can say where it runs."""

    def where(self) -> str:
        return node_name()


class ShardWorker:
    """An async actor: runs one share on its own event loop and buffers its rows until
    the driver polls (:meth:`drain`)."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.done = False
        self.error: str | None = None
        self.outcome: RunOutcome | None = None
        self.task: asyncio.Task[None] | None = None
        self.wake: asyncio.Event | None = None

    def clock(self) -> float:
        """This node's wall clock (the driver measures the offset)."""
        return time.time()

    def where(self) -> str:
        return node_name()

    def missing_keys(self, sources: dict[str, KeySource], node: str) -> str | None:
        """Why this actor could not send (a variable unset on its node), or None."""
        for source in sources.values():
            for name in source.variables():
                if not os.environ.get(name):
                    return (
                        f"environment variable {name} is not set on Ray node {node}"
                        " (see docs/scale.md: keys on a cluster)"
                    )
        return None

    async def start(self, payload: ShardPayload) -> str | None:
        """Begin sending; returns None, or why this actor cannot (a key unset here)."""
        job = payload.job
        env = os.environ
        try:
            job = replace(
                job,
                endpoints={
                    n: with_keys(e, payload.key_sources.get(e.provider), env)
                    for n, e in job.endpoints.items()
                },
                judge_endpoints={
                    n: with_keys(e, payload.key_sources.get(e.provider), env)
                    for n, e in job.judge_endpoints.items()
                },
            )
        except KeyError as exc:
            return (
                f"environment variable {exc.args[0]} is not set on Ray node {payload.node}"
                " (see docs/scale.md: keys on a cluster)"
            )
        self.wake = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run(payload, job))
        return None

    async def _run(self, payload: ShardPayload, job: Job) -> None:
        from harness.run.executors.inline import run_job

        quotas = _RayQuotas(payload.coordinator)
        if payload.budget is not None:
            payload.budget.client = quotas
        limiters: dict[str, RateLimiter] = {
            name: LeasedLimiter(quotas, name, rpm, tpm)
            for name, (rpm, tpm) in payload.rates.items()
        }
        # The coordinator's clock, converted to this node's: offsets are node − driver.
        to_here = payload.clock.offset_s - payload.coordinator_clock.offset_s
        clock_ok = payload.clock.ok and payload.coordinator_clock.ok

        async def line_up(phase: Phase) -> None:
            start = await quotas.arrive(phase.key, payload.slot) + to_here
            delay = start - time.time()
            if delay > 0:
                await asyncio.sleep(delay)

        def sink(row: Row) -> None:
            started = row.get("started_at")
            if isinstance(started, datetime):  # on the driver's clock
                row["started_at"] = started - timedelta(seconds=payload.clock.offset_s)
            row["node_clock_ok"] = clock_ok
            self.rows.append(stamp(row, "ray", payload.actor, payload.node))
            assert self.wake is not None
            self.wake.set()

        try:
            self.outcome = await run_job(
                job, sink, before_phase=line_up, limiters=limiters, budget=payload.budget
            )
        except asyncio.CancelledError:
            pass  # stopped: in-flight requests were recorded as cancelled
        except Exception as exc:  # the driver re-sends this share's unfinished requests
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            if payload.budget is not None:
                with contextlib.suppress(Exception):
                    await payload.budget.flush()
            self.done = True
            assert self.wake is not None
            self.wake.set()

    async def drain(self) -> tuple[list[Row], bool, RunOutcome | None, str | None]:
        """The next batch of rows (waits up to ``DRAIN_WAIT_S`` for one); whether the
        share is finished (then its outcome, or the error that ended it)."""
        assert self.wake is not None
        if not self.rows and not self.done:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), DRAIN_WAIT_S)
        self.wake.clear()
        batch, self.rows = self.rows[:BATCH_ROWS], self.rows[BATCH_ROWS:]
        finished = self.done and not self.rows
        return batch, finished, self.outcome if finished else None, self.error

    async def stop(self) -> None:
        """Cancel the share: its in-flight requests become cancelled rows."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


def lost_row(request: RequestSpec, index: int, why: str) -> Row:
    """The row of a planned request whose actor died and could not be replaced."""
    return {
        **request_identity(request),
        "request_index": index,
        "status": "error",
        "error_type": LOST,
        "error_message": why,
        "attempts": 0,
        "retry_wait_s": 0.0,
        "executor": "ray",
    }


def payload_jobs(job: Job, actors: int, streams_per_actor: int) -> list[Job]:
    """The share of each actor, as it travels: keyed phases, caps split, no rates (the
    coordinator holds them), no health checks (they watch processes on the driver's
    host), no budget, and endpoints without secrets."""
    base = replace(job, phases=keyed(job.phases))
    shares = []
    for k in range(actors):
        share = shard_job(base, actors, k, streams_cap=streams_per_actor)
        shares.append(
            replace(
                share,
                rates={},
                health={},
                endpoints={
                    n: without_keys(e, job.key_sources.get(e.provider))
                    for n, e in share.endpoints.items()
                },
                judge_endpoints={
                    n: without_keys(e, job.key_sources.get(e.provider))
                    for n, e in share.judge_endpoints.items()
                },
                key_sources={},
            )
        )
    return shares


@dataclass
class _Slot:
    """One share and the actor sending it."""

    k: int
    job: Job
    handle: Any = None
    actor: int = 0
    replaced: bool = False
    finished: bool = False


class _Driver:
    """One run on the cluster: start, poll, replace, stop."""

    def __init__(self, job: Job, sink: Callable[[Row], None], settings: RaySettings):
        import ray

        self.ray = ray
        self.job = job
        self.sink = sink
        self.settings = settings
        self.token = uuid.uuid4().hex[:8]
        self.n = max(1, min(settings.actors, job.concurrency))
        self.seen = IndexSet()  # planned indices delivered (a bit each, not a set of ints)
        self.renumber = Renumber(job.phases)
        self.nodes: dict[str, dict[str, Any]] = {}
        self.next_actor = 0
        self.outcome = RunOutcome(
            planned=sum(len(p.requests) for p in job.phases if p.duration_s is None)
        )
        self.dropped = 0

    # -- setting up -------------------------------------------------------------------

    def _coordinator(self) -> Any:
        ray = self.ray
        options: dict[str, Any] = {"num_cpus": 0, "name": f"quotas-{self.token}"}
        self.driver_node = None
        with contextlib.suppress(Exception):  # on the driver's node, so its clock is near
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            node = ray.get_runtime_context().get_node_id()
            self.driver_node = f"{socket.gethostname()}/{node[:8]}"
            # Hard: a soft affinity lands elsewhere now and then, and a coordinator on a
            # worker node dies with it, taking every actor's quotas along.
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
        budget = self.job.budget
        return (
            ray.remote(_Coordinator)
            .options(**options)
            .remote(
                # The ledger as it stands (a resumed run's earlier spend included).
                budget,
                self.job.rates,
                range(self.n),
            )
        )

    def _spawn(self, slots: list[_Slot]) -> list[tuple[_Slot, str]]:
        """Start an actor for each of ``slots`` (side by side: a worker process takes
        seconds to start). Returns the slots whose actor died on the way, and why;
        raises HarnessError when one cannot send (a key not set on its node)."""
        from ray.exceptions import RayError

        ray = self.ray
        for slot in slots:
            slot.actor = self.next_actor
            self.next_actor += 1
            slot.handle = (
                ray.remote(ShardWorker)
                .options(
                    name=f"shard-{self.token}-{slot.actor}",
                    num_cpus=self.settings.cpus_per_actor,
                    scheduling_strategy="SPREAD",
                    max_restarts=0,
                )
                .remote()
            )
        wheres = [slot.handle.where.remote() for slot in slots]
        budget = self.job.budget
        failed: list[tuple[_Slot, str]] = []
        ready: list[tuple[_Slot, str, NodeClock]] = []
        for slot, where in zip(slots, wheres, strict=True):
            try:
                node = ray.get(where)
                clock = measure(functools.partial(_probe, ray, slot.handle))
                # Every actor can read its keys before any sends: a node without one
                # stops the run before the first request.
                problem = ray.get(slot.handle.missing_keys.remote(self.job.key_sources, node))
            except RayError as exc:
                failed.append((slot, f"actor did not start: {exc}"))
                continue
            if problem is not None:
                raise HarnessError(problem)
            ready.append((slot, node, clock))
        starts = []
        for slot, node, clock in ready:
            entry = self.nodes.setdefault(node, {**clock.manifest(), "actors": []})
            entry["actors"].append(slot.actor)
            payload = ShardPayload(
                slot=slot.k,
                actor=slot.actor,
                job=slot.job,
                coordinator=self.coordinator,
                clock=clock,
                coordinator_clock=self.coordinator_clock,
                node=node,
                key_sources=dict(self.job.key_sources),
                rates=dict(self.job.rates),
                budget=None
                if budget is None
                else LeasedBudget(budget.limit_usd, budget.prices, budget.judge_prices, _Unbound()),
            )
            starts.append((slot, slot.handle.start.remote(payload)))
        for slot, start in starts:
            try:
                problem = ray.get(start)
            except RayError as exc:
                failed.append((slot, f"actor did not start: {exc}"))
                continue
            if problem is not None:
                raise HarnessError(problem)
        return failed

    def run(self) -> RunOutcome:
        ray = self.ray
        from ray.exceptions import RayError

        shares = payload_jobs(self.job, self.n, self.settings.streams_per_actor)
        slots = [_Slot(k, share) for k, share in enumerate(shares)]
        self.coordinator = self._coordinator()
        self.coordinator_clock = measure(functools.partial(_probe, ray, self.coordinator))
        self.nodes["coordinator"] = {
            **self.coordinator_clock.manifest(),
            "node": ray.get(self.coordinator.where.remote()),
            "driver_node": self.driver_node,
        }
        interrupted = False
        try:
            failed = self._spawn(slots)
            for slot, why in failed:
                self._replace(slot, why, started=False)
            polls = {slot.handle.drain.remote(): slot for slot in slots if not slot.finished}
            stop_by: float | None = None
            while polls:
                try:
                    ready, _ = ray.wait(list(polls), num_returns=1, timeout=1.0)
                except KeyboardInterrupt:
                    if interrupted:
                        raise
                    interrupted = True
                    stop_by = time.monotonic() + STOP_GRACE_S
                    for slot in slots:
                        if not slot.finished:
                            slot.handle.stop.remote()
                    continue
                if stop_by is not None and time.monotonic() > stop_by:
                    break
                for ref in ready:
                    slot = polls.pop(ref)
                    try:
                        rows, finished, outcome, error = ray.get(ref)
                    except RayError as exc:  # dead, or killed by its node (memory)
                        if not interrupted and self._replace(slot, f"actor died: {exc}"):
                            polls[slot.handle.drain.remote()] = slot
                        continue
                    for row in rows:
                        self._deliver(row)
                    if finished and error is not None and not interrupted:
                        if self._replace(slot, f"its share failed: {error}"):
                            polls[slot.handle.drain.remote()] = slot
                        continue
                    if finished:
                        slot.finished = True
                        # Stopped early (the budget): the others must not wait for it.
                        self.coordinator.leave.remote(slot.k)
                        merge_outcome(self.outcome, outcome)
                        continue
                    polls[slot.handle.drain.remote()] = slot
            if not interrupted:
                for slot in slots:
                    if not slot.finished:
                        self._give_up(slot, "its actor stopped answering")
            self._read_budget()
        finally:
            for slot in slots:
                if slot.handle is not None:
                    with contextlib.suppress(Exception):
                        ray.kill(slot.handle)
            with contextlib.suppress(Exception):
                ray.kill(self.coordinator)
        self.outcome.executor = {
            "actors": self.n,
            "streams_per_actor": self.settings.streams_per_actor,
            "nodes": self.nodes,
            "replaced_actors": self.next_actor - self.n,
            "duplicate_rows_dropped": self.dropped,
        }
        if interrupted:
            raise KeyboardInterrupt
        return self.outcome

    # -- rows and faults --------------------------------------------------------------

    def _deliver(self, row: Row) -> None:
        index = row.get("request_index")
        if isinstance(index, int) and index < self.renumber.planned_end:
            if index in self.seen:
                self.dropped += 1  # a request is never delivered twice
                return
            self.seen.add(index)
        else:
            self.renumber(row)
        self.sink(row)

    def _replace(self, slot: _Slot, why: str, *, started: bool = True) -> bool:
        """Re-send ``slot``'s unfinished planned requests once, on a new actor; True if one
        runs. Time-bounded phases of an actor that had started are not re-run (their
        time is gone)."""
        if slot.replaced:
            self._give_up(slot, why)
            return False
        slot.replaced = True
        delivered = self.seen.copy()  # what the new actor must not send again
        phases: list[Phase] = []
        for phase in slot.job.phases:
            if not started:
                phases.append(phase)
                continue
            if not phase.requests or phase.duration_s is not None:
                phases.append(idle_share(phase))
                continue
            if is_lazy(phase):  # generated: the new actor skips what was delivered
                left = with_step(phase, Skip(delivered))
                phases.append(left if left.requests else idle_share(phase))
                continue
            keep = [(i, r) for i, r in phase_pairs(phase) if i not in delivered]
            phases.append(
                replace(phase, requests=[r for _, r in keep], indices=[i for i, _ in keep])
                if keep
                else idle_share(phase)
            )
        timed = (
            pair
            for p in slot.job.phases
            if started and p.duration_s is not None and p.requests
            for pair in phase_pairs(p)
        )
        self._lose(timed, f"{why}; a time-bounded phase is not re-run")
        slot.job = replace(slot.job, phases=phases)
        with contextlib.suppress(Exception):
            self.ray.kill(slot.handle)
        failed = self._spawn([slot])
        if failed:  # no node could take it: its requests are errors
            self._give_up(slot, f"{why}; no actor could replace it ({failed[0][1]})")
            return False
        return True

    def _give_up(self, slot: _Slot, why: str) -> None:
        slot.finished = True
        self.coordinator.leave.remote(slot.k)
        # Its phases as they stand hold every planned request not yet delivered (a
        # replacement kept those; what it dropped was delivered or lost already).
        self._lose((pair for p in slot.job.phases if p.requests for pair in phase_pairs(p)), why)

    def _lose(self, pairs: Iterable[tuple[int, RequestSpec]], why: str) -> None:
        """A ``worker_lost`` row for each of these planned requests not delivered yet
        (in index order: phases come in plan order, each one's requests in index order)."""
        for index, request in pairs:
            if index not in self.seen:
                self.seen.add(index)
                self.sink(lost_row(request, index, why))
                self.outcome.errors += 1

    def _read_budget(self) -> None:
        if self.job.budget is not None:
            apply_state(self.job.budget, self.ray.get(self.coordinator.budget_state.remote()))


class _Unbound:
    """A leased budget's client before it reaches its actor (which binds the real one)."""

    async def lease(self, worst_usd: float, unpriced: bool) -> bool:
        raise RuntimeError("a leased budget is used only inside its actor")

    async def release(self, reserved_usd: float, spent_usd: float) -> None:
        raise RuntimeError("a leased budget is used only inside its actor")

    async def acquire(self, provider: str, tokens: int) -> float:
        raise RuntimeError("a leased budget is used only inside its actor")


def _probe(ray: Any, handle: Any) -> float:
    """An actor's wall clock, fetched (one round trip of :func:`~harness.run.nodeclock.measure`)."""
    return float(ray.get(handle.clock.remote()))
