"""A phase's requests generated as they are sent, not held: O(1) memory per phase.

A big phase (:data:`harness.run.plan.LAZY_MIN_REQUESTS` requests or more) is a
:class:`PlannedRequests`: a *source* that regenerates the phase's requests, in plan order,
from the suite's own (deterministic, seeded) planner, plus the request index of the
first and their number, plus a few *steps* that select or complete requests as they
stream past:

- :class:`Skip`: leave out these request indices (``--resume``: the finished ones; a
  Ray actor's replacement: the rows already delivered);
- :class:`Share`: keep share ``k`` of ``workers``, round-robin over chains (the worker
  processes' and Ray actors' split, :mod:`harness.run.executors.sharding`);
- :class:`Head`: keep the first ``n``;
- :class:`Attach`: give waiting requests their finished predecessor's stored row (resume);
- :class:`Relabel`: a capacity search's level, its template's requests at another label.

Each request keeps its ``request_index`` whatever the steps: the index is its position
in the whole plan. A list of requests (a small phase, a test's) is still a valid
``Phase.requests``; :func:`phase_pairs` and :func:`end_of` speak of both.

The source, the steps and so the phase pickle small (a suite config, a provider name,
a few numbers, at most a set of indices): that is what worker processes and Ray actors
receive, and each regenerates its own share.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, overload

from harness.request import RequestSpec, Row
from harness.run.chains import ChainKey, key_of, predecessor_key, waits

if TYPE_CHECKING:
    from harness.run.scheduler import Phase

Pairs = Iterator[tuple[int, RequestSpec]]
"""(request_index, request), in plan order."""


class Step(Protocol):
    """One selection or completion applied to a stream of (index, request) pairs."""

    def apply(self, pairs: Pairs) -> Pairs:
        """The pairs this step lets through (or completes)."""
        ...

    def count(self, n: int | None, first: bool, lo: int, hi: int) -> int | None:
        """How many pairs come out of ``n`` going in, when that is known without
        iterating (``first``: this is the first step, so the ``n`` pairs are the indices
        ``lo`` .. ``hi - 1``); None when only iterating can tell."""
        ...


@dataclass(frozen=True)
class Skip:
    """Leave out the requests whose index is in ``indices``."""

    indices: Container[int]

    def apply(self, pairs: Pairs) -> Pairs:
        skip = self.indices
        return ((i, r) for i, r in pairs if i not in skip)

    def count(self, n: int | None, first: bool, lo: int, hi: int) -> int | None:
        if n is None or not first:
            return None
        if isinstance(self.indices, IndexSet):
            return n - self.indices.count_in(lo, hi)
        if not isinstance(self.indices, Iterable):
            return None
        return n - sum(1 for i in self.indices if lo <= i < hi)


@dataclass(frozen=True)
class Share:
    """Share ``k`` of ``workers``: round-robin over chains (a conversation's turns stay
    in one share, see :func:`harness.run.chains.chain_roots`)."""

    workers: int
    k: int
    chained: bool = False

    def apply(self, pairs: Pairs) -> Pairs:
        if not self.chained:
            return (p for n, p in enumerate(pairs) if n % self.workers == self.k)
        return self._chained(pairs)

    def _chained(self, pairs: Pairs) -> Pairs:
        # A chain's rank is its first request's rank among the chain starts so far;
        # the dict lives while the phase is iterated (chained suites are dataset-sized).
        rank_of: dict[ChainKey, int] = {}
        starts = 0
        for i, r in pairs:
            before = rank_of.get(predecessor_key(r)) if r.after is not None else None
            if before is None:
                before, starts = starts, starts + 1
            rank_of[key_of(r)] = before
            if before % self.workers == self.k:
                yield i, r

    def count(self, n: int | None, first: bool, lo: int, hi: int) -> int | None:
        if n is None or self.chained:
            return None
        return len(range(self.k, n, self.workers))


@dataclass(frozen=True)
class Head:
    """The first ``n`` requests."""

    n: int

    def apply(self, pairs: Pairs) -> Pairs:
        return itertools.islice(pairs, self.n)

    def count(self, n: int | None, first: bool, lo: int, hi: int) -> int | None:
        return None if n is None else min(n, self.n)


@dataclass(frozen=True)
class Attach:
    """A waiting request gets its predecessor's stored row (a resumed conversation)."""

    stored: Mapping[ChainKey, Row]

    def apply(self, pairs: Pairs) -> Pairs:
        for i, r in pairs:
            if waits(r) and (row := self.stored.get(predecessor_key(r))) is not None:
                r = dataclasses.replace(r, previous=row)
            yield i, r

    def count(self, n: int | None, first: bool, lo: int, hi: int) -> int | None:
        return n


@dataclass(frozen=True)
class Relabel:
    """Every request at load level ``label`` (a capacity search's level, from its template)."""

    label: str

    def apply(self, pairs: Pairs) -> Pairs:
        return ((i, dataclasses.replace(r, load_level=self.label)) for i, r in pairs)

    def count(self, n: int | None, first: bool, lo: int, hi: int) -> int | None:
        return n


@dataclass(frozen=True, eq=False)
class PlannedRequests(Sequence[RequestSpec]):
    """A phase's requests, regenerated from ``source`` each time they are iterated.

    ``source()`` yields the phase's ``total`` requests in plan order (the first has
    ``request_index`` ``first_index``); ``steps`` then select and complete them.
    ``chained``: some request names a predecessor (``after``).
    """

    source: Callable[[], Iterable[RequestSpec]]
    total: int
    first_index: int
    chained: bool = False
    steps: tuple[Step, ...] = ()

    def pairs(self) -> Pairs:
        """(request_index, request) of every selected request, in plan order."""
        pairs: Pairs = zip(
            itertools.count(self.first_index),
            itertools.islice(self.source(), self.total),
            strict=False,
        )
        for step in self.steps:
            pairs = step.apply(pairs)
        return pairs

    def indices(self) -> Iterator[int]:
        """The selected requests' ``request_index``."""
        return (i for i, _ in self.pairs())

    @property
    def end_index(self) -> int:
        """One past the last index this phase may hold (whatever the steps select)."""
        return self.first_index + self.total

    def with_step(self, step: Step) -> PlannedRequests:
        """These requests, then ``step``."""
        return dataclasses.replace(self, steps=(*self.steps, step))

    @functools.cached_property
    def _length(self) -> int:
        n: int | None = self.total
        for position, step in enumerate(self.steps):
            n = step.count(n, position == 0, self.first_index, self.end_index)
            if n is None:
                return sum(1 for _ in self.pairs())
        assert n is not None
        return n

    def __len__(self) -> int:
        return self._length

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[RequestSpec]:
        return (r for _, r in self.pairs())

    @overload
    def __getitem__(self, item: int) -> RequestSpec: ...

    @overload
    def __getitem__(self, item: slice) -> list[RequestSpec]: ...

    def __getitem__(self, item: int | slice) -> RequestSpec | list[RequestSpec]:
        if isinstance(item, slice):
            start, stop, stride = item.indices(len(self))
            return list(itertools.islice(self, start, stop, stride))
        position = item + len(self) if item < 0 else item
        if position >= 0:
            for r in itertools.islice(self, position, None):
                return r
        raise IndexError(item)

    def __repr__(self) -> str:
        return (
            f"PlannedRequests(total={self.total}, first_index={self.first_index},"
            f" steps={self.steps!r})"
        )


def phase_pairs(phase: Phase) -> Pairs:
    """(request_index, request) of a phase's planned requests, lazy or listed."""
    requests = phase.requests
    if isinstance(requests, PlannedRequests) and phase.indices is None:
        return requests.pairs()
    indices: Iterable[int] = phase.indices or range(
        phase.first_index, phase.first_index + len(requests)
    )
    return zip(indices, requests, strict=True)


def end_of(phase: Phase) -> int:
    """One past the phase's highest planned ``request_index`` (a lazy phase: of its
    whole planned range, so that numbers handed out past it never meet a planned one)."""
    requests = phase.requests
    if isinstance(requests, PlannedRequests) and phase.indices is None:
        return requests.end_index
    if phase.indices:
        return max(phase.indices) + 1
    return phase.first_index + len(requests)


def maybe_chained(phase: Phase) -> bool:
    """Could a request of this phase wait for another's row? (A list: look at it.)"""
    requests = phase.requests
    if isinstance(requests, PlannedRequests):
        return requests.chained
    return any(r.after is not None for r in requests)


def is_lazy(phase: Phase) -> bool:
    """Are the phase's requests generated as they are sent?"""
    return isinstance(phase.requests, PlannedRequests) and phase.indices is None


def lazy_requests(phase: Phase) -> PlannedRequests:
    """The phase's :class:`PlannedRequests` (it must be :func:`is_lazy`)."""
    assert isinstance(phase.requests, PlannedRequests)
    assert phase.indices is None
    return phase.requests


def with_step(phase: Phase, step: Step) -> Phase:
    """A lazy phase with one more step."""
    return dataclasses.replace(phase, requests=lazy_requests(phase).with_step(step))


class IndexSet:
    """Request indices seen so far, one bit each (a million indices: 125 kB, where a
    ``set[int]`` would hold ~60 MB). Picklable; a copy is a :class:`Skip`'s snapshot."""

    def __init__(self) -> None:
        self._bits = bytearray()
        self._count = 0

    def add(self, index: int) -> None:
        """Mark ``index`` (>= 0) seen."""
        byte, bit = divmod(index, 8)
        if byte >= len(self._bits):
            self._bits.extend(bytes(max(byte + 1 - len(self._bits), len(self._bits))))
        if not self._bits[byte] >> bit & 1:
            self._bits[byte] |= 1 << bit
            self._count += 1

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int) or index < 0:
            return False
        byte, bit = divmod(index, 8)
        return byte < len(self._bits) and bool(self._bits[byte] >> bit & 1)

    def __len__(self) -> int:
        return self._count

    @classmethod
    def of(cls, indices: Iterable[int]) -> IndexSet:
        """The set of these (non-negative) indices."""
        bits = cls()
        for i in indices:
            bits.add(i)
        return bits

    def count_in(self, lo: int, hi: int) -> int:
        """How many indices in ``lo`` .. ``hi - 1`` are in the set."""
        lo = max(lo, 0)
        if hi <= lo:
            return 0
        first = lo // 8
        chunk = int.from_bytes(self._bits[first : (hi + 7) // 8], "little") >> (lo - first * 8)
        return (chunk & ((1 << (hi - lo)) - 1)).bit_count()

    def copy(self) -> IndexSet:
        """A snapshot."""
        other = IndexSet()
        other._bits, other._count = bytearray(self._bits), self._count
        return other
