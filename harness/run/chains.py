"""Requests that need an earlier request's row before they are sent (``RequestSpec.after``).

A conversation's turn k+1 carries turn k's answer; a prompt-cache suite's warm requests
must follow their cold one. Such a request names its predecessor (``after``: a
``case_id`` of the same suite, provider, load level and repeat). The plan is the same
as any other, one request per row, so load patterns, retries, the budget and resume
are unchanged; the scheduler only holds a request back until its predecessor's row
exists, then hands that row to it (``previous``), and the suite's ``prepare`` hook
(:mod:`harness.run.pipeline`) completes the request just before it is sent.

Rules that keep this deadlock-free and resumable:

- a suite plans a predecessor before its successors (turn-major order), so a waiting
  request's predecessor was dispatched first, in every load pattern;
- the wait happens before any cap is taken (no slot is held while waiting);
- a request that ends without a row (budget stop, cancellation) releases its
  successors with ``None``: they are not sent either;
- a worker process gets whole chains (:func:`chain_roots`), never half of one;
- a resumed run attaches the stored row of each finished predecessor to its
  remaining successors (:func:`attach_previous`), so finished turns are not resent
  and an unfinished turn still gets its own history.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.request import RequestSpec, Row

if TYPE_CHECKING:
    from harness.run.scheduler import Phase

ChainKey = tuple[str, str, str | None, int, str]


def key_of(request: RequestSpec) -> ChainKey:
    """The key a successor names this request by."""
    return (request.suite, request.provider, request.load_level, request.repeat, request.case_id)


def predecessor_key(request: RequestSpec) -> ChainKey:
    """The key of the request ``request`` waits for (it must have ``after``)."""
    assert request.after is not None
    return (request.suite, request.provider, request.load_level, request.repeat, request.after)


def waits(request: RequestSpec) -> bool:
    """Does this request still wait for its predecessor's row?"""
    return request.after is not None and request.previous is None


class Chains:
    """The rows successors wait for, in one scheduler (one event loop)."""

    def __init__(self, requests: Iterable[RequestSpec]):
        requests = list(requests)
        self.needed = {predecessor_key(r) for r in requests if waits(r)}
        planned = {key_of(r) for r in requests}
        missing = self.needed - planned
        if missing:
            # A plan bug (a predecessor in another worker, or lost on resume):
            # waiting would never end, so say so before anything is sent.
            raise ValueError(f"requests wait for rows this plan never produces: {sorted(missing)}")
        self._rows: dict[ChainKey, Row | None] = {}
        self._events: dict[ChainKey, asyncio.Event] = {}

    def __bool__(self) -> bool:
        return bool(self.needed)

    async def wait(self, request: RequestSpec) -> Row | None:
        """The predecessor's row once it exists; None when it ended without one."""
        key = predecessor_key(request)
        if key not in self._rows:
            await self._events.setdefault(key, asyncio.Event()).wait()
        return self._rows[key]

    def finished(self, request: RequestSpec, row: Row | None) -> None:
        """``request`` ended (with ``row``, or None when nothing was sent)."""
        key = key_of(request)
        if key in self.needed and key not in self._rows:
            self._rows[key] = row
            event = self._events.get(key)
            if event is not None:
                event.set()


def chain_roots(requests: Sequence[RequestSpec]) -> list[int]:
    """For each request, the position of its chain's first request (itself if none).

    A worker process that gets a root also gets every request chained to it.
    """
    position = {key_of(r): i for i, r in enumerate(requests)}
    roots: list[int] = []
    for i, r in enumerate(requests):
        before = position.get(predecessor_key(r)) if r.after is not None else None
        roots.append(roots[before] if before is not None and before < i else i)
    return roots


def attach_previous(plan: list[Phase], run_dir: Path) -> list[Phase]:
    """A resumed plan whose waiting requests get their finished predecessor's stored row.

    ``plan`` is what :func:`harness.run.plan.remaining` left: a predecessor not in
    it is finished and stored in ``run_dir``.
    """
    from harness.run.lazy import Attach, is_lazy, maybe_chained, with_step

    # Only phases that have chains are looked at (a big latency plan is not walked).
    chained = [phase for phase in plan if maybe_chained(phase)]
    pending = {key_of(r) for phase in chained for r in phase.requests}
    wanted = {
        predecessor_key(r)
        for phase in chained
        for r in phase.requests
        if waits(r) and predecessor_key(r) not in pending
    }
    if not wanted:
        return plan
    stored = _stored_rows(run_dir, wanted)
    out = []
    for phase in plan:
        if not maybe_chained(phase):
            out.append(phase)
            continue
        if is_lazy(phase):  # generated: the rows are attached as its requests stream past
            out.append(with_step(phase, Attach(stored)))
            continue
        requests = [
            dataclasses.replace(r, previous=stored.get(predecessor_key(r)))
            if waits(r) and predecessor_key(r) in wanted
            else r
            for r in phase.requests
        ]
        out.append(dataclasses.replace(phase, requests=requests))
    return out


def _stored_rows(run_dir: Path, wanted: set[ChainKey]) -> dict[ChainKey, Row]:
    from harness.store.parts import read_runs

    table = read_runs(run_dir.parent, [run_dir.name]).to_pandas()
    rows: dict[ChainKey, Row] = {}
    for record in table.to_dict("records"):
        level = record.get("load_level")
        key = (
            str(record["suite"]),
            str(record["provider"]),
            None if level is None or level != level else str(level),  # NaN: no level
            int(record["repeat"]),
            str(record["case_id"]),
        )
        if key in wanted:
            rows[key] = {k: _plain(v) for k, v in record.items()}
    return rows


def _plain(value: Any) -> Any:
    """A stored value as the live row had it (NaN → None, numpy scalars → Python)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and value != value:
        return None
    return value
