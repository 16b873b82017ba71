"""One request's way through the run: cache, transport, scoring, judge (:class:`Sender`)."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from harness.cost.pricing import price_row
from harness.providers import NativeClient, open_client
from harness.providers.trace import Endpoint
from harness.request import RequestSpec
from harness.run.cache import CacheHit, ResponseCache, judge_key
from harness.sim.profile import GRADE_HEADER
from harness.suites import SUITE_KINDS

if TYPE_CHECKING:
    pass


def wire_endpoint(endpoint: Endpoint, request: RequestSpec) -> Endpoint:
    """The endpoint a request is sent to: for a *simulated* endpoint and a case with
    references (``rag_qa``), one whose ``extra_headers`` hand the simulator the case,
    the repeat and the references (:data:`~harness.sim.profile.GRADE_HEADER`), so that a
    profile's ``accuracy`` can be honoured. Any other endpoint is returned as it is: a
    real provider is never told the answer."""
    if not endpoint.simulated or "references" not in request.meta:
        return endpoint
    hint = {
        "case": request.case_id,
        "repeat": request.repeat,
        "references": list(request.meta["references"]),
    }
    headers = endpoint.params.get("extra_headers")
    merged = {**(headers if isinstance(headers, dict) else {}), GRADE_HEADER: json.dumps(hint)}
    return dataclasses.replace(endpoint, params={**endpoint.params, "extra_headers": merged})


class Sender:
    """Sends one request through its provider's transport, then scores and judges it."""

    def __init__(
        self,
        endpoints: dict[str, Endpoint],
        judge_endpoints: dict[str, Endpoint],
        cache: ResponseCache | None = None,
    ):
        self.endpoints = endpoints
        self.judge_endpoints = judge_endpoints
        self.cache = cache
        needs_litellm = judge_endpoints or any(e.transport == "litellm" for e in endpoints.values())
        self.litellm: Any = None
        if needs_litellm:
            from harness.providers.litellm import import_litellm

            self.litellm = import_litellm()
        # The native clients in use, opened on first use (a run imports no transport
        # it does not send through).
        self.clients: dict[str, NativeClient] = {}

    def prepare(self, request: RequestSpec) -> RequestSpec | dict[str, Any]:
        """The request completed by its suite's ``prepare`` hook (a conversation's earlier
        answers from ``request.previous``, see harness.run.chains; a cache prefix's salt),
        or the row of a request the suite will not send. Idempotent."""
        prepare = SUITE_KINDS[request.suite_kind].prepare
        if prepare is None:
            return request
        prepared = prepare(request)
        if isinstance(prepared, RequestSpec):
            return prepared
        endpoint = self.endpoints[request.provider]
        return prepared | {"model": endpoint.model, "simulated": endpoint.simulated}

    async def __call__(self, request: RequestSpec) -> dict[str, Any]:
        prepared = self.prepare(request)  # just before sending (warm-ups included)
        if not isinstance(prepared, RequestSpec):
            return prepared
        request = prepared
        endpoint = self.endpoints[request.provider]
        # The cache serves only quality-scored requests outside load phases
        # (harness.run.cache.cacheable), and never an answer this run stored itself.
        hit = self.cache.get(endpoint, request) if self.cache is not None else None
        if hit is not None:
            row, verdict = await self._judged(self._scored(hit.row, request), request, hit)
            if verdict is not None and self.cache is not None:
                self.cache.put_judge(endpoint, request, verdict)
            return row
        wire = wire_endpoint(endpoint, request)  # the cache keeps the config's endpoint
        if endpoint.transport == "litellm":
            from harness.providers.litellm import send

            row = await send(self.litellm, wire, request)
        else:
            client = self.clients.get(endpoint.transport)
            if client is None:
                client = self.clients[endpoint.transport] = open_client(endpoint.transport)
            row = await client.send(wire, request)
        price_row(row, endpoint.price)
        row, verdict = await self._judged(self._scored(row, request), request)
        if self.cache is not None:
            self.cache.put(endpoint, request, row, verdict)
        return row

    def _scored(self, row: dict[str, Any], request: RequestSpec) -> dict[str, Any]:
        kind = SUITE_KINDS[request.suite_kind]
        if kind.score is not None:
            row.update(kind.score(row, request))
        return row

    async def _judged(
        self, row: dict[str, Any], request: RequestSpec, hit: CacheHit | None = None
    ) -> tuple[dict[str, Any], tuple[str, dict[str, Any]] | None]:
        """The row with its verdict, and (key, verdict) when the judge was called.

        A cached answer keeps its stored verdict only if this run's judge would
        make the identical call (same model, endpoint, params, grading messages);
        otherwise it is judged again, like any answer.
        """
        judge_endpoint = self.judge_endpoints.get(request.suite)
        if judge_endpoint is None or request.warmup or row["status"] != "ok":
            return row, None
        from harness.suites.judge import judge, judge_call

        call = judge_call(judge_endpoint, row, request)
        key = judge_key(call)
        if hit is not None and hit.judge is not None and hit.judge_key == key:
            row.update(hit.judge, judge_from_cache=True)
            return row, None
        verdict = await judge(self.litellm, judge_endpoint, row, request, call)
        row.update(verdict, judge_from_cache=False)
        return row, (key, verdict)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
