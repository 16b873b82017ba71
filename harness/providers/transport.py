"""The litellm transport: one streamed request through ``litellm.acompletion``.

litellm is imported lazily (it takes seconds) and only in processes that send
requests. The clock: ``t0`` is taken immediately before the awaited call, so
litellm's own preparation counts toward TTFT; the runner's warm-up request
keeps its one-off first-call setup (~0.25 s here) out of the measurements.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from datetime import UTC, datetime
from typing import Any

from harness.providers.trace import (
    Endpoint,
    StreamTrace,
    build_row,
    parse_retry_after,
    request_timeout,
)
from harness.request import RequestSpec
from harness.secrets import scrub

__all__ = ["Endpoint", "classify_error", "import_litellm", "record_error", "send"]


def import_litellm() -> Any:
    """Import litellm offline: its bundled price table, no network fetch at import."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def classify_error(exc: BaseException) -> tuple[str, int | None]:
    """Map an exception to (error_type, http_status)."""
    if isinstance(exc, TimeoutError):
        return "timeout", None
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    message = str(exc)
    # litellm reports a refused connection as InternalServerError(500,
    # "Connection error."); that is not a status the server sent.
    if "Connection error" in message or name in ("APIConnectionError", "ConnectError"):
        return "connection_error", None
    if name in ("Timeout", "APITimeoutError") or "timed out" in message.lower():
        return "timeout", None
    if status == 429 or name == "RateLimitError":
        return "rate_limited", 429
    if status is not None:
        return f"http_{status}", status
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower(), None


def record_error(trace: StreamTrace, exc: BaseException, *secrets: str | None) -> None:
    """Fill the trace's error fields from an exception (shared by every transport).

    The message loses ``secrets`` and everything key-shaped (:func:`harness.secrets.scrub`).
    """
    error_type, status = classify_error(exc)
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None:
        trace.retry_after_s = parse_retry_after(headers.get("retry-after"))
    # litellm's Anthropic errors carry an empty response; the real headers are here.
    raw_headers: Any = getattr(exc, "litellm_response_headers", None)
    if trace.retry_after_s is None and raw_headers is not None and hasattr(raw_headers, "get"):
        trace.retry_after_s = parse_retry_after(raw_headers.get("retry-after"))
    if re.search(r"Expecting value|JSONDecodeError|Unterminated string|Invalid control", str(exc)):
        error_type = "malformed_stream"  # litellm wraps a JSON error as a connection error
    elif trace.text_offsets and error_type != "timeout":
        error_type = "stream_error"  # the stream broke after text had arrived
    trace.error_type = error_type
    trace.http_status = status
    trace.error_message = scrub(str(exc) or type(exc).__name__, *secrets)[:2000]


async def send(litellm: Any, endpoint: Endpoint, request: RequestSpec) -> dict[str, Any]:
    """Send one request, stream the answer, and return its row (never raises on API errors)."""
    kwargs: dict[str, Any] = dict(endpoint.params)
    if endpoint.api_base:
        kwargs["api_base"] = endpoint.api_base
    if endpoint.api_key:
        kwargs["api_key"] = endpoint.api_key
    kwargs.update(request.extra)
    trace = StreamTrace(started_at=datetime.now(UTC))
    usage: Any = None
    t0 = time.perf_counter()
    try:
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
            async for chunk in stream:
                now = time.perf_counter() - t0
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
            usage = provider_usage(stream, usage)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # every failure of the request becomes a row
        record_error(trace, exc, *endpoint.known_secrets)
    trace.end_s = time.perf_counter() - t0
    trace.usage = usage_counts(usage)
    row = build_row(trace, endpoint, request)
    row["t0_perf_s"] = t0  # the clock's start on this host's monotonic clock
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


def usage_counts(usage: Any) -> dict[str, int | None]:
    """Token counts from an OpenAI-style usage object or dict."""

    def get(obj: Any, name: str) -> int | None:
        if obj is None:
            return None
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        return int(value) if isinstance(value, int | float) else None

    def sub(name: str) -> Any:
        if usage is None:
            return None
        return usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)

    return {
        "input_tokens": get(usage, "prompt_tokens"),
        "output_tokens": get(usage, "completion_tokens"),
        "cached_input_tokens": get(sub("prompt_tokens_details"), "cached_tokens"),
        "reasoning_tokens": get(sub("completion_tokens_details"), "reasoning_tokens"),
        # Anthropic-style prompt caching reports writes apart from reads.
        "cache_write_tokens": get(usage, "cache_creation_input_tokens")
        or get(sub("prompt_tokens_details"), "cache_creation_tokens"),
    }
