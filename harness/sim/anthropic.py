"""The simulator's Anthropic Messages dialect: ``POST /v1/messages`` (streamed or not).

Same answer, profile, faults and write stamps as the OpenAI dialect
(:mod:`harness.sim.server`), in Anthropic's shapes:

- the event stream ``message_start`` (usage ``input_tokens``,
  ``cache_read_input_tokens``, ``cache_creation_input_tokens``), per content
  block ``content_block_start`` / ``content_block_delta`` (``thinking_delta``
  for a reasoning profile's reasoning, then ``text_delta``) /
  ``content_block_stop``, then ``message_delta`` (``stop_reason``, usage
  ``output_tokens``) and ``message_stop``; a ``ping`` after the first block
  starts, as Anthropic sends one;
- errors as ``{"type": "error", "error": {"type": ..., "message": ...}}``: 429
  ``rate_limit_error`` with ``retry-after``, 401 ``authentication_error``, 529
  ``overloaded_error`` (the profile's ``server_error`` fault), 500 ``api_error``
  (``error_rate``), 400 ``invalid_request_error``;
- stop reasons ``end_turn``, ``max_tokens`` and ``refusal`` (the
  ``content_filter`` fault).

A ``prefix_cache`` profile caches, as Anthropic does, only a prefix that ends at
a ``cache_control`` breakpoint (a text block of the system prompt or of a
message): a request without one reads nothing from the cache.

The system prompt comes first in the prompt text, as the system message does in
the OpenAI dialect, so the same conversation gets the same words in both.
``metadata.user_id`` (what litellm makes of ``user``) names the request in
``/sim/timings``: received, first and last text written, like ``user`` there.
The route is also served under ``/v1/v1/messages``: litellm appends
``/v1/messages`` to an ``api_base``, so the simulator's advertised base (which
ends in ``/v1``) works unchanged.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from harness.sim.profile import GRADE_HEADER
from harness.sim.server import (
    _echoed,
    _sleep_until,
    _token_schedule,
    answer_words,
    graded_words,
    reasoning_words,
    stream_events,
)
from harness.sim.workloads import scripted_reply, with_cache

if TYPE_CHECKING:
    from harness.sim.server import SimServer

__all__ = ["ROUTES", "messages"]

ROUTES = ("/v1/messages", "/v1/v1/messages")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "\n".join(
            str(b.get("text", "")) for b in content if isinstance(b, dict) and "text" in b
        )
    return ""


def _contents(body: dict[str, Any]) -> list[Any]:
    """The system prompt's content (if any), then each message's: aligned with ``parts``."""
    contents = [body["system"]] if body.get("system") else []
    return contents + [m.get("content") for m in body["messages"] if isinstance(m, dict)]


def _has_breakpoint(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(b, dict) and isinstance(b.get("cache_control"), dict) for b in content
    )


def prompt_text(body: dict[str, Any]) -> str:
    """The system prompt, then every message's text: the OpenAI dialect's prompt text."""
    parts = [_text_of(body["system"])] if body.get("system") else []
    parts.extend(_text_of(m.get("content")) for m in body["messages"] if isinstance(m, dict))
    return "\n".join(parts)


def error(status: int, kind: str, message: str) -> web.Response:
    """An error in Anthropic's shape."""
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return web.json_response(body, status=status)


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()


async def messages(server: SimServer, request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages``."""
    received = time.perf_counter()
    server.requests_received += 1
    try:
        body = await request.json()
        if not isinstance(body.get("messages"), list):
            raise TypeError
        model = str(body.get("model", "sim"))
        prompt = prompt_text(body)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return error(400, "invalid_request_error", "body must be JSON with 'messages'")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        return error(400, "invalid_request_error", "max_tokens: field required")
    profile = server.profile_for(model)
    stamps = server.stamps_for((body.get("metadata") or {}).get("user_id"), received)
    rng = random.Random(f"{profile.seed}:{next(server._counter)}")
    if rng.random() < profile.error_rate:
        return error(500, "api_error", "simulated server error")
    fault = server._fault(model, profile, rng)
    if fault == "rate_limit":
        response = error(429, "rate_limit_error", "simulated rate limit")
        response.headers["retry-after"] = f"{profile.retry_after_s:g}"
        return response
    if fault == "server_error":
        return error(529, "overloaded_error", "Overloaded")
    if fault == "auth_error":
        # A careless provider echoes the credential; the client must scrub it.
        others = [f"{k}: {v}" for k, v in request.headers.items() if _echoed(k)]
        echo = "; ".join(others)
        print(f"sim: rejected credentials ({echo})", file=sys.stderr, flush=True)
        return error(401, "authentication_error", f"invalid x-api-key ({echo})")
    graded = graded_words(profile, request.headers.get(GRADE_HEADER), prompt)
    words = graded or answer_words(profile, model, prompt, max_tokens)
    parts = [("system", _text_of(body["system"]))] if body.get("system") else []
    parts += [
        (str(m.get("role")), _text_of(m.get("content")))
        for m in body["messages"]
        if isinstance(m, dict)
    ]
    server.workloads.record(model, parts)
    # As Anthropic's API: only a prefix ending at a cache_control breakpoint is
    # cached (and read back); a request without one caches nothing.
    marked = [i for i, content in enumerate(_contents(body)) if _has_breakpoint(content)]
    cached = (
        server.workloads.cached_tokens(profile, model, parts[: marked[-1] + 1]) if marked else 0
    )
    scripted = scripted_reply(profile, parts)
    if scripted is not None:
        words = scripted[:max_tokens]
    if graded is None and rng.random() < profile.abstain_rate:
        words = ["I", "don't", "know"][:max_tokens]
    words = words[:max_tokens]
    stop_reason = "max_tokens" if len(words) >= max_tokens else "end_turn"
    reasoning = reasoning_words(profile, model, prompt)
    delays = _token_schedule(with_cache(profile, cached), len(reasoning) + len(words), rng)
    if fault == "empty":
        reasoning, words, delays = [], [], []
    if fault == "content_filter":
        words, stop_reason = words[:2], "refusal"
        delays = delays[: len(reasoning) + 2]
    usage_in = {
        "input_tokens": len(prompt.split()),
        "cache_creation_input_tokens": profile.cache_write_tokens,
        "cache_read_input_tokens": profile.cache_read_tokens,
    }
    if profile.prefix_cache:
        # Anthropic's input_tokens leaves out what was read from (or written to) the cache.
        usage_in["cache_read_input_tokens"] = cached
        usage_in["input_tokens"] = max(0, len(prompt.split()) - cached - profile.cache_write_tokens)
    output_tokens = len(reasoning) + len(words)
    ident = f"msg_sim{uuid.uuid4().hex[:20]}"
    if not body.get("stream"):
        if fault in ("hang_before_first_token", "hang_mid_stream"):
            await asyncio.sleep(profile.hang_s)
        await _sleep_until(received + (delays[-1] if delays else 0.0))
        content: list[dict[str, Any]] = []
        if reasoning:
            content.append(
                {"type": "thinking", "thinking": " ".join(reasoning), "signature": "sim"}
            )
        content.append({"type": "text", "text": " ".join(words)})
        return web.json_response(
            {
                "id": ident,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": {**usage_in, "output_tokens": output_tokens},
            }
        )
    start = {
        "type": "message_start",
        "message": {
            "id": ident,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage_in, "output_tokens": 1},
        },
    }
    events = stream_events(reasoning, words, delays, profile.tokens_per_chunk)
    try:
        return await _stream(
            request,
            start,
            events,
            received,
            stop_reason,
            output_tokens,
            fault,
            profile.hang_s,
            stamps,
        )
    except ConnectionError:
        return web.Response(status=499)  # the client went away


async def _stream(
    request: web.Request,
    start: dict[str, Any],
    events: list[tuple[float, dict[str, str]]],
    received: float,
    stop_reason: str,
    output_tokens: int,
    fault: str | None,
    hang_s: float,
    stamps: dict[str, float | None] | None,
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    # message_start carries no token (like OpenAI's role chunk): a client that
    # takes it for the first token reports a TTFT that is too short.
    await response.write(_event("message_start", start))
    if fault == "hang_before_first_token":
        await asyncio.sleep(hang_s)
    half = len(events) // 2
    # No inter-token delay: the whole answer in one write (as the OpenAI dialect
    # does), so that a capacity benchmark measures the client, not this server.
    bulk: list[bytes] | None = (
        [] if fault is None and events and events[-1][0] == events[0][0] else None
    )
    last_text = max((i for i, (_, d) in enumerate(events) if "content" in d), default=-1)
    block = -1  # index of the open content block
    block_kind: str | None = None
    for i, (due, delta) in enumerate(events):
        kind = "thinking" if "reasoning_content" in delta else "text"
        if i == half and fault == "hang_mid_stream":
            await asyncio.sleep(hang_s)
        if i == half and fault == "connection_reset":
            if request.transport is not None:
                request.transport.abort()
            return response
        if i == half and fault == "malformed_chunk":
            await response.write(b'event: content_block_delta\ndata: {"type": "content_bl\n\n')
        head = b""
        if kind != block_kind:
            if block_kind is not None:
                head += _block_stop(block, block_kind)
            block, block_kind = block + 1, kind
            head += _event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": block,
                    "content_block": {"type": kind, kind: ""},
                },
            )
            if block == 0:
                head += _event("ping", {"type": "ping"})
        if head and bulk is None:
            await response.write(head)  # framing is sent ahead, not at the token's time
        text = delta.get("reasoning_content") or delta.get("content") or ""
        wire = {"type": f"{kind}_delta", kind: text}
        chunk = _event(
            "content_block_delta", {"type": "content_block_delta", "index": block, "delta": wire}
        )
        if bulk is not None and i < len(events) - 1:
            bulk += (head, chunk)
            continue
        await _sleep_until(received + due)
        if bulk is not None:
            chunk = b"".join((*bulk, head, chunk))
            if stamps is not None:
                stamps["first_sent"] = stamps["last_sent"] = time.perf_counter()
        elif stamps is not None and kind == "text":
            now = time.perf_counter()
            if stamps["first_sent"] is None:
                stamps["first_sent"] = now  # the first text: what TTFT measures
            if i == last_text:
                stamps["last_sent"] = now
        await response.write(chunk)
    if fault == "no_finish":
        await response.write_eof()
        return response
    tail = _block_stop(block, block_kind) if block_kind is not None else b""
    tail += _event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
    )
    tail += _event("message_stop", {"type": "message_stop"})
    await response.write(tail)
    await response.write_eof()
    return response


def _block_stop(index: int, kind: str) -> bytes:
    out = b""
    if kind == "thinking":  # a thinking block ends with its signature
        out = _event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "signature_delta", "signature": "sim-signature"},
            },
        )
    return out + _event("content_block_stop", {"type": "content_block_stop", "index": index})
