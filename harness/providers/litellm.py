"""The litellm transport: one streamed request through ``litellm.acompletion``.

litellm is imported lazily (it takes seconds) and only in processes that send
requests. The clock is taken at the socket (:mod:`harness.providers.socket_stamps`):
``t0`` is when litellm's request was handed to the socket, and each chunk
litellm yields is stamped with the arrival of the latest block read from the
connection, so neither litellm's preparation nor its parsing counts toward
TTFT or ITL. Such rows say ``clock: socket``. A provider whose litellm handler
does not use the stamping client falls back to the call clock (``t0`` taken
immediately before the awaited call, chunks stamped as litellm yields them),
and its rows say ``clock: call``.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from typing import Any

from harness.providers.trace import (
    Endpoint,
    StreamTrace,
    build_row,
    record_error,
    request_timeout,
    usage_counts,
)
from harness.request import RequestSpec

__all__ = ["Endpoint", "import_litellm", "send"]


def import_litellm() -> Any:
    """Import litellm offline: its bundled price table, no network fetch at import."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


async def send(litellm: Any, endpoint: Endpoint, request: RequestSpec) -> dict[str, Any]:
    """Send one request, stream the answer, and return its row (never raises on API errors).

    ``send_delay_s`` is the time from this call to the request's write (litellm's
    preparation); None on the call clock.
    """
    from harness.providers.socket_stamps import SocketStamps, client_kwargs, stamping

    kwargs: dict[str, Any] = dict(endpoint.params)
    if endpoint.api_base:
        kwargs["api_base"] = endpoint.api_base
    if endpoint.api_key:
        kwargs["api_key"] = endpoint.api_key
    kwargs.update(request.extra)
    kwargs.update(client_kwargs(litellm, endpoint.model, endpoint.api_base))
    trace = StreamTrace(started_at=datetime.now(UTC))
    usage: Any = None
    stamps = SocketStamps()
    perf = time.perf_counter
    called = t0 = perf()
    try:
        with stamping(stamps):
            async with request_timeout(endpoint, trace):
                stream = await litellm.acompletion(
                    model=endpoint.model,
                    messages=request.messages,
                    max_tokens=request.max_tokens,
                    stream=True,
                    stream_options={"include_usage": True},
                    timeout=endpoint.timeout_s,
                    max_retries=0,  # retries are the runner's business, and are recorded
                    **kwargs,
                )
                # litellm returns the stream once the response's headers are
                # in: the request has been written, so the clock can move there.
                socket = stamps.sent is not None
                if socket:
                    assert stamps.sent is not None
                    t0 = stamps.sent
                async for chunk in stream:
                    # The bytes that carried this chunk were read by the latest
                    # block read (see socket_stamps): that read is its arrival.
                    last = stamps.last_block
                    now = (last if socket and last is not None else perf()) - t0
                    trace.on_chunk(now)
                    chunk_usage = getattr(chunk, "usage", None)
                    if chunk_usage is not None:
                        usage = chunk_usage
                    for choice in chunk.choices or ():
                        delta = choice.delta
                        reasoning = getattr(delta, "reasoning_content", None)
                        if reasoning:
                            trace.on_reasoning(now, reasoning if isinstance(reasoning, str) else "")
                        content = getattr(delta, "content", None)
                        if content:
                            trace.on_text(now, content)
                        tool_calls = getattr(delta, "tool_calls", None) or getattr(
                            delta, "function_call", None
                        )
                        if tool_calls:
                            trace.on_tools(now, tool_calls)
                        if choice.finish_reason:
                            trace.finish_reason = choice.finish_reason
                if socket and stamps.last_block is not None:
                    trace.end_s = stamps.last_block - t0  # the last byte's arrival
                usage = provider_usage(stream, usage)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # every failure of the request becomes a row
        record_error(trace, exc, *endpoint.known_secrets)
    if stamps.sent is not None and t0 == called:
        t0 = stamps.sent  # written, then failed before the stream was returned
    if trace.end_s is None or trace.error_type is not None:
        trace.end_s = perf() - t0
    trace.usage = usage_counts(usage)
    trace.clock = "call" if stamps.sent is None else "socket"
    row = build_row(trace, endpoint, request)
    row["t0_perf_s"] = t0  # the clock's start on this host's monotonic clock
    row["send_delay_s"] = None if stamps.sent is None else stamps.sent - called
    return row


def provider_usage(stream: Any, yielded: Any) -> Any:
    """The usage the provider sent, rather than litellm's rebuilt one.

    At the end of a stream litellm yields a usage it re-derives, filling in what
    the provider left out with counts of its own (reasoning tokens counted from
    the reasoning text, 0 reasoning tokens for a plain answer), which the direct
    transport never sees. The chunks litellm kept hold the provider's usage; the
    yielded one is used when the provider sent none.
    """
    for chunk in reversed(getattr(stream, "chunks", None) or ()):
        usage = chunk.get("usage") if isinstance(chunk, dict) else getattr(chunk, "usage", None)
        if usage:
            return usage
    return yielded
