"""What a transport observes during one streamed request, and how it becomes a row.

Every transport (litellm, the direct OpenAI-compatible client) fills a
:class:`StreamTrace` while it reads the stream and hands it to
:func:`build_row`, so the metric definitions live in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from harness.cost.pricing import UNKNOWN_PRICE, Price
from harness.providers.tools import ToolCalls, on_tool_deltas, tool_columns
from harness.request import RequestSpec, request_identity
from harness.secrets import scrub


@dataclass(frozen=True)
class Endpoint:
    """What a transport needs to call one provider; the key stays out of every row."""

    provider: str
    model: str
    simulated: bool
    api_base: str | None
    api_key: str | None
    params: dict[str, Any]
    timeout_s: float
    transport: str = "litellm"
    price: Price = UNKNOWN_PRICE
    first_token_timeout_s: float | None = None
    secrets: tuple[str, ...] = ()  # resolved ${VAR} values in params (headers), to scrub

    @property
    def known_secrets(self) -> tuple[str | None, ...]:
        """Every secret value this endpoint sends: error messages must lose them all."""
        return (self.api_key, *self.secrets)


@dataclass
class StreamTrace:
    """Client-side observations of one request, offsets in seconds from ``t0``."""

    started_at: datetime
    first_chunk_s: float | None = None
    text_offsets: list[float] = field(default_factory=list)
    text_parts: list[str] = field(default_factory=list)
    first_reasoning_s: float | None = None
    reasoning_chunks: int = 0
    reasoning_parts: list[str] = field(default_factory=list)
    end_s: float | None = None
    finish_reason: str | None = None
    usage: dict[str, int | None] = field(default_factory=dict)
    error_type: str | None = None
    error_message: str | None = None
    http_status: int | None = None
    retry_after_s: float | None = None
    on_first_text: Callable[[], None] | None = None
    # "socket": t0 is the request's write and chunks are stamped at their bytes'
    # arrival; "call": t0 is the call and chunks are stamped when parsed.
    clock: str = "socket"
    tools: ToolCalls | None = None  # streamed tool calls (providers.tools.on_tool_deltas)

    def on_chunk(self, now: float) -> None:
        if self.first_chunk_s is None:
            self.first_chunk_s = now

    def on_text(self, now: float, text: str) -> None:
        if not self.text_offsets and self.on_first_text is not None:
            self.on_first_text()
        self.text_offsets.append(now)
        self.text_parts.append(text)

    def on_tools(self, now: float, fragments: Any) -> None:
        """A delta's tool-call fragments (``delta.tool_calls`` or ``function_call``).

        The first tool-call token lifts the first-token timeout, as text does: an answer
        that only calls tools has started.
        """
        started = self.tools is not None and self.tools.first_s is not None
        self.tools = on_tool_deltas(self.tools, fragments, now)
        first = not started and self.tools.first_s is not None and not self.text_offsets
        if first and self.on_first_text is not None:
            self.on_first_text()

    def on_reasoning(self, now: float, text: str = "") -> None:
        if self.first_reasoning_s is None:
            self.first_reasoning_s = now
        self.reasoning_chunks += 1
        if text:
            self.reasoning_parts.append(text)


@contextlib.asynccontextmanager
async def request_timeout(endpoint: Endpoint, trace: StreamTrace) -> AsyncIterator[None]:
    """The total timeout of one attempt, and a first-token timeout lifted once text flows."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + endpoint.timeout_s
    first = endpoint.first_token_timeout_s
    async with asyncio.timeout_at(
        min(deadline, loop.time() + first) if first else deadline
    ) as limit:
        if first:
            trace.on_first_text = lambda: limit.reschedule(deadline)
        yield


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def classify_outcome(trace: StreamTrace) -> None:
    """Name the faults that a transport sees as a finished stream or a bare timeout."""
    if trace.error_type == "timeout":
        started = trace.text_offsets or (
            trace.tools is not None and trace.tools.first_s is not None
        )
        trace.error_type = "timeout_mid_stream" if started else "timeout_first_token"
    if trace.error_type is not None:
        return
    if trace.finish_reason == "content_filter":
        trace.error_type = "content_filtered"
        trace.error_message = "the provider stopped the answer with finish_reason content_filter"
    elif not trace.text_offsets and not trace.reasoning_chunks and trace.tools is None:
        trace.error_type = "empty_response"
        trace.error_message = "the stream completed without any text"
    elif trace.finish_reason is None:
        trace.error_type = "incomplete_stream"
        trace.error_message = "the stream ended without a finish reason"


def build_row(trace: StreamTrace, endpoint: Endpoint, request: RequestSpec) -> dict[str, Any]:
    """The stored row: identity, outcome, timing metrics (see README, Metrics), tokens."""
    classify_outcome(trace)
    ok = trace.error_type is None
    offsets = trace.text_offsets
    server_tokens = trace.usage.get("output_tokens")
    row: dict[str, Any] = {
        **request_identity(request),
        "provider": endpoint.provider,
        "model": endpoint.model,
        "simulated": endpoint.simulated,
        "transport": endpoint.transport,
        "clock": trace.clock,
        "status": "ok" if ok else "error",
        "error_type": trace.error_type,
        "error_message": trace.error_message,
        "http_status": trace.http_status,
        "retry_after_s": trace.retry_after_s,
        "started_at": trace.started_at,
        "first_chunk_s": trace.first_chunk_s,
        "first_reasoning_s": trace.first_reasoning_s,
        "ttft_s": offsets[0] if offsets else None,
        "e2e_s": trace.end_s if ok else None,
        "chunk_offsets_s": offsets,
        "text_chunks": len(offsets),
        "finish_reason": trace.finish_reason,
        "response_text": "".join(trace.text_parts),
        "input_chars": sum(len(str(m.get("content", ""))) for m in request.messages),
        **{k: trace.usage.get(k) for k in _USAGE_KEYS},
        **tool_columns(trace.tools),
    }
    row["output_tokens_client"] = len(offsets)
    row["output_chars"] = len(row["response_text"])
    # The provider's count is the truth for cost; a different client count is
    # flagged (e.g. several tokens per chunk, or a stream cut short). Reasoning
    # and tool-call chunks are output tokens too.
    tool_chunks = trace.tools.chunks if trace.tools is not None else 0
    client_chunks = len(offsets) + trace.reasoning_chunks + tool_chunks
    row["tokens_mismatch"] = server_tokens is not None and server_tokens != client_chunks
    row.update(speed_metrics(trace, ok))
    return row


def count_chunk_tokens(parts: list[str]) -> list[int]:
    """Tokens in each streamed chunk's text, under the local tokenizer (``o200k_base``).

    Each chunk is encoded on its own: a server cuts chunks at its own token
    boundaries, so no token spans two chunks. ``encode_ordinary``: text that
    looks like a special token (``<|endoftext|>``) is counted as text, not refused.
    """
    if not parts:
        return []
    from harness.cost.tokens import encoding

    encode = encoding().encode_ordinary
    return [len(encode(part)) for part in parts]


def stream_token_counts(trace: StreamTrace) -> tuple[list[int], int]:
    """Tokens of each text chunk and of all reasoning, counted from the stream.

    When the provider's output count equals the number of text and reasoning
    chunks, every chunk carried exactly one token (a chunk with text carries at
    least one): exact, and no tokenizer is needed, which is the common case.
    Otherwise (several tokens per chunk, no usage) each chunk is counted locally.
    """
    n_text, n_reasoning = len(trace.text_offsets), trace.reasoning_chunks
    output = trace.usage.get("output_tokens")
    reasoning = trace.usage.get("reasoning_tokens")
    if output == n_text + n_reasoning and reasoning in (None, n_reasoning):
        return [1] * n_text, n_reasoning
    return count_chunk_tokens(trace.text_parts), sum(count_chunk_tokens(trace.reasoning_parts))


def visible_token_count(
    usage: dict[str, int | None], text_tokens: int, reasoning_tokens_client: int
) -> int:
    """Output tokens the reader sees: output minus reasoning (see README, Metrics).

    With the provider's usage: ``output - reasoning``. When usage has output
    tokens but no reasoning count while reasoning was streamed, the provider's
    output count is split in the proportion the local tokenizer finds in the
    streamed text and reasoning: unlike ``output - reasoning counted locally``,
    the tokenizers' difference cancels out, and a long reasoning miscounted by
    a few percent cannot swallow a short answer. Without usage: the local count
    of the streamed text.
    """
    output = usage.get("output_tokens")
    if output is None:
        return text_tokens
    reasoning = usage.get("reasoning_tokens")
    if reasoning is not None:
        return max(0, output - reasoning)
    if reasoning_tokens_client == 0:
        return output
    return round(output * text_tokens / (text_tokens + reasoning_tokens_client))


def speed_metrics(trace: StreamTrace, ok: bool) -> dict[str, Any]:
    """Reasoning and speed columns; after TTFT only visible tokens count.

    ITL = (last text chunk - first text chunk) / (visible - 1);
    TPOT = (E2E - TTFT) / (visible - 1); output speed = visible / (E2E - TTFT).
    All three are undefined (None) with fewer than two text chunks: every
    visible token then arrived at TTFT, and E2E - TTFT is only the stream's
    tail (finish and usage events), not the pace of generation.
    """
    offsets = trace.text_offsets
    chunk_tokens, reasoning_client = stream_token_counts(trace)
    visible = visible_token_count(trace.usage, sum(chunk_tokens), reasoning_client)
    first_reasoning = trace.first_reasoning_s
    out: dict[str, Any] = {
        "reasoning_s": (
            offsets[0] - first_reasoning
            if offsets and first_reasoning is not None and first_reasoning <= offsets[0]
            else None
        ),
        "reasoning_chunks": trace.reasoning_chunks,
        "reasoning_tokens_client": reasoning_client,
        "visible_tokens": visible,
        "chunk_tokens": chunk_tokens,
        "tokens_per_chunk": visible / len(offsets) if offsets else None,
        "itl_s": None,
        "tpot_s": None,
        "output_tps": None,
    }
    end = trace.end_s
    if ok and len(offsets) >= 2 and visible >= 2 and end is not None:
        generating = end - offsets[0]
        out["itl_s"] = (offsets[-1] - offsets[0]) / (visible - 1)
        out["tpot_s"] = generating / (visible - 1)
        out["output_tps"] = visible / generating if generating > 0 else None
    return out


_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


def classify_error(exc: BaseException) -> tuple[str, int | None]:
    """Map an exception to (error_type, http_status)."""
    if isinstance(exc, TimeoutError):
        return "timeout", None
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    message = str(exc)
    # litellm reports a refused connection as InternalServerError(500,
    # "Connection error." from the OpenAI SDK, aiohttp's "Cannot connect to
    # host" from its own handlers); that is not a status the server sent.
    refused = "Connection error" in message or "Cannot connect to host" in message
    if refused or name in ("APIConnectionError", "ConnectError"):
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
