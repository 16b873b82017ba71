"""The native Anthropic transport: the Messages API's event stream over one aiohttp session.

For ``anthropic/…`` models, beside the litellm transport, for the same reason as
:mod:`harness.providers.direct`: the clock starts when the request's bytes are
handed to the socket (aiohttp's request-sent hook, via the direct client's
session), and each event is stamped when the socket read that carried it
returned, not after litellm has parsed it into pydantic objects. The request
is translated here (no litellm on the hot path, no litellm import at all),
the way litellm translates it, and the rows were checked against litellm's on
the simulator's Anthropic dialect (tests/e2e/test_anthropic_dialect.py):

- URL: ``{api_base}/v1/messages`` (litellm's rule: kept as is if it already
  ends in ``/v1/messages``); ``https://api.anthropic.com`` without an api_base;
- headers ``x-api-key`` and ``anthropic-version: 2023-06-01``, then the
  params' ``extra_headers`` (an ``anthropic-beta`` goes there);
- body: the system messages' text as ``system`` (as text blocks when one
  carries a ``cache_control`` breakpoint, which text blocks keep everywhere:
  Anthropic caches nothing unmarked), the other messages as ``messages``,
  ``max_tokens``, ``stream: true``; params ``temperature``,
  ``top_p``, ``top_k``, ``metadata``, ``thinking`` pass through, ``stop``
  becomes ``stop_sequences`` and ``user`` becomes ``metadata.user_id``;
  ``extra_body`` is merged last. Any other param is refused
  (:class:`UnsupportedRequest`): ``transport: auto`` then picks litellm;
- usage: ``input_tokens`` is the whole prompt, i.e. Anthropic's
  ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``
  (as litellm counts it), ``cached_input_tokens`` the cache reads,
  ``cache_write_tokens`` the cache creations. ``reasoning_tokens`` stays None:
  Anthropic does not report it (litellm counts the thinking text with a
  tokenizer of its own; the row's ``visible_tokens`` come out the same);
- finish reasons as litellm maps them (``end_turn`` → ``stop``,
  ``max_tokens`` → ``length``, ``refusal`` → ``content_filter``, …);
- an HTTP error keeps its own status (529 ``overloaded_error`` is ``http_529``,
  where litellm says 500) and ``retry-after``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import aiohttp

from harness.providers.direct import (
    DirectClient,
    _fail,
    stream_headers,
    wire_model,
)
from harness.providers.sse import read_events
from harness.providers.trace import Endpoint, StreamTrace, build_row
from harness.request import RequestSpec

__all__ = [
    "ANTHROPIC_API_BASE",
    "ANTHROPIC_VERSION",
    "AnthropicClient",
    "UnsupportedRequest",
    "messages_url",
    "request_body",
    "supports",
]

ANTHROPIC_API_BASE = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"

# Params translated or passed through; anything else goes through litellm.
_PASSED = frozenset({"temperature", "top_p", "top_k", "metadata", "thinking"})
_TRANSLATED = frozenset({"stop", "user", "extra_headers", "extra_body"})
SUPPORTED_PARAMS = _PASSED | _TRANSLATED

# litellm's map (litellm_core_utils.core_helpers._FINISH_REASON_MAP).
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "length",
    "compaction": "length",
    "model_context_window_exceeded": "length",
}

_loads = json.loads


class UnsupportedRequest(ValueError):
    """A request the native client does not translate (litellm does)."""


def supports(params: dict[str, Any]) -> bool:
    """Whether the native client translates every one of these provider params."""
    return set(params) <= SUPPORTED_PARAMS


def messages_url(endpoint: Endpoint) -> str:
    """``{api_base}/v1/messages``, as litellm builds it."""
    base = (endpoint.api_base or ANTHROPIC_API_BASE).rstrip("/")
    return base if base.endswith("/v1/messages") else base + "/v1/messages"


def _blocks(content: Any) -> Any:
    """OpenAI message content as Anthropic content: a string, or text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        blocks = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text"):
                raise UnsupportedRequest("only text content is translated natively")
            block: dict[str, Any] = {"type": "text", "text": str(part.get("text", ""))}
            # A prompt-cache breakpoint: Anthropic caches nothing without one, so
            # dropping it would measure an uncached provider (as litellm keeps it).
            if isinstance(part.get("cache_control"), dict):
                block["cache_control"] = part["cache_control"]
            blocks.append(block)
        return blocks
    raise UnsupportedRequest(f"message content of type {type(content).__name__}")


def request_body(endpoint: Endpoint, request: RequestSpec) -> dict[str, Any]:
    """The Messages API body of a streamed request (see the module docstring)."""
    params = {**endpoint.params, **request.extra}
    unknown = sorted(set(params) - SUPPORTED_PARAMS)
    if unknown:
        raise UnsupportedRequest(f"params not translated natively: {', '.join(unknown)}")
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        role = message.get("role")
        if role == "system":
            blocks = _blocks(message.get("content"))
            system.extend([{"type": "text", "text": blocks}] if isinstance(blocks, str) else blocks)
        elif role in ("user", "assistant"):
            messages.append({"role": role, "content": _blocks(message.get("content"))})
        else:
            raise UnsupportedRequest(f"messages with role {role!r}")
    body: dict[str, Any] = {"model": wire_model(endpoint.model), "messages": messages}
    if any("cache_control" in block for block in system):
        body["system"] = system  # blocks: the breakpoint stays where it was put
    elif system:
        body["system"] = "\n".join(block["text"] for block in system)
    body["max_tokens"] = request.max_tokens
    for name in sorted(_PASSED & set(params)):
        body[name] = params[name]
    stop = params.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if isinstance(params.get("user"), str):
        body["metadata"] = {**(body.get("metadata") or {}), "user_id": params["user"]}
    extra_body = params.get("extra_body")
    if isinstance(extra_body, dict):
        body.update(extra_body)
    body["stream"] = True  # the metrics need a stream whatever a param says
    return body


class AnthropicClient(DirectClient):
    """Streams Anthropic Messages through one aiohttp session (the direct client's).

    Same lifetime rules as :class:`DirectClient`: one per event loop, closed when done.
    """

    async def send(self, endpoint: Endpoint, request: RequestSpec) -> dict[str, Any]:
        """Send one streamed request and return its row (never raises on API errors).

        A request the client cannot translate becomes an ``unsupported_request``
        row, sent nowhere.
        """
        trace = StreamTrace(started_at=datetime.now(UTC))
        try:
            body = request_body(endpoint, request)
        except UnsupportedRequest as exc:
            _fail(trace, "unsupported_request", f"transport anthropic: {exc}", ())
            return build_row(trace, endpoint, request)
        url, proxy = self._target(messages_url(endpoint))
        headers = stream_headers(
            endpoint.params.get("extra_headers"),
            "x-api-key",
            endpoint.api_key,
            base={"anthropic-version": ANTHROPIC_VERSION},
        )
        return await self._exchange(
            endpoint, request, trace, url, proxy, headers, body, _read_stream
        )


class _Usage:
    """Anthropic's usage, as it arrives (message_start, then message_delta)."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def update(self, usage: Any) -> None:
        if isinstance(usage, dict):
            for key, value in usage.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    self.counts[key] = value

    def row_counts(self) -> dict[str, int | None]:
        c = self.counts
        if not c:
            return {}
        read = c.get("cache_read_input_tokens")
        write = c.get("cache_creation_input_tokens")
        fresh = c.get("input_tokens")
        prompt = None if fresh is None else fresh + (read or 0) + (write or 0)
        return {
            "input_tokens": prompt,
            "output_tokens": c.get("output_tokens"),
            "cached_input_tokens": read,
            "cache_write_tokens": write,
            "reasoning_tokens": None,
        }


async def _read_stream(response: aiohttp.ClientResponse, trace: StreamTrace, t0: float) -> bool:
    """Read the event stream into ``trace``; True if it ended with ``message_stop``.

    The SSE framing is :func:`~harness.providers.sse.read_events` (one timestamp
    per socket read, every event of that read shares it); ``event:`` lines are
    redundant with the payload's ``type`` and skipped.
    """
    usage = _Usage()
    try:
        outcome = await read_events(response, trace, t0, _Events(trace, usage).on_event)
        if outcome is not None:
            return outcome
        if trace.finish_reason is not None:
            return True  # message_delta came; a missing message_stop costs nothing
        kind = response.headers.get("Content-Type", "?")
        _fail(trace, "stream_error", f"stream ended before message_stop ({kind})", ())
        return False
    finally:
        trace.usage = usage.row_counts()


class _Events:
    """One stream's events into its trace and usage (the callback of ``read_events``)."""

    __slots__ = ("trace", "usage")

    def __init__(self, trace: StreamTrace, usage: _Usage) -> None:
        self.trace = trace
        self.usage = usage

    def on_event(self, payload: str, now: float) -> bool | None:
        """Apply one event; None to go on, True at ``message_stop``, False if the stream failed."""
        trace, usage = self.trace, self.usage
        try:
            event = _loads(payload)
            kind = event.get("type")
            if kind == "content_block_delta":
                trace.on_chunk(now)
                delta = event["delta"]
                delta_kind = delta.get("type")
                if delta_kind == "text_delta":
                    text = delta["text"]
                    if not isinstance(text, str):
                        raise TypeError("text_delta.text is not a string")
                    if text:
                        trace.on_text(now, text)
                elif delta_kind == "thinking_delta":
                    thinking = delta.get("thinking")
                    trace.on_reasoning(now, thinking if isinstance(thinking, str) else "")
                # signature_delta, input_json_delta (tools), citations: no text
            elif kind == "ping":
                pass
            elif kind == "message_start":
                trace.on_chunk(now)
                usage.update(event["message"].get("usage"))
            elif kind == "content_block_start":
                trace.on_chunk(now)
                block = event.get("content_block") or {}
                if block.get("type") == "text" and block.get("text"):
                    trace.on_text(now, str(block["text"]))
            elif kind == "message_delta":
                trace.on_chunk(now)
                stop = (event.get("delta") or {}).get("stop_reason")
                if stop:
                    trace.finish_reason = FINISH_REASONS.get(str(stop), str(stop))
                usage.update(event.get("usage"))
            elif kind == "message_stop":
                return True
            elif kind == "error":
                error = event.get("error") or {}
                message = error.get("message") if isinstance(error, dict) else error
                name = error.get("type") if isinstance(error, dict) else "error"
                _fail(trace, "stream_error", f"error event: {name}: {message}", ())
                return False
        except (ValueError, AttributeError, TypeError, KeyError) as exc:
            _fail(trace, "malformed_stream", f"{type(exc).__name__}: {exc}: {payload[:200]!r}", ())
            return False
        return None
