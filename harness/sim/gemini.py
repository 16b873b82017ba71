"""The simulator's Gemini dialect: ``models/{model}:streamGenerateContent?alt=sse`` (and
``:generateContent``).

Same answer, profile, faults and write stamps as the OpenAI dialect
(:mod:`harness.sim.server`), in the Gemini API's shapes:

- the request: ``contents`` (``role`` user/model, ``parts[].text``), the system
  prompt as ``systemInstruction`` or ``system_instruction`` (litellm sends the
  latter), ``generationConfig`` with ``maxOutputTokens`` or ``max_output_tokens``;
- the stream: ``data:`` events (CRLF line endings, as Google sends them), each a
  GenerateContentResponse: ``candidates[0].content.parts[]`` (``thought: true``
  parts for a reasoning profile's reasoning, then text), ``finishReason`` on the
  last event (``STOP``, ``MAX_TOKENS``, ``SAFETY`` for the ``content_filter``
  fault), ``usageMetadata`` on every event, counted so far: ``promptTokenCount``
  (the prompt's words plus the profile's ``cache_read_tokens``, which Gemini
  counts inside the prompt), ``cachedContentTokenCount``, ``candidatesTokenCount``
  (text), ``thoughtsTokenCount`` (reasoning), ``totalTokenCount`` (their sum).
  With ``usage_reasoning: false`` no ``thoughtsTokenCount`` is sent and the
  reasoning is counted in ``candidatesTokenCount`` (the "inclusive" form some
  Vertex models report);
- errors as ``{"error": {"code", "message", "status"}}``: 429
  ``RESOURCE_EXHAUSTED`` with ``retry-after`` (and a ``RetryInfo`` detail), 503
  ``UNAVAILABLE`` (the ``server_error`` fault), 500 ``INTERNAL`` (``error_rate``),
  401 ``UNAUTHENTICATED`` (``auth_error``: it echoes the key header and the
  request's query string, as a careless proxy would), 400 ``INVALID_ARGUMENT``.

The Gemini API has no ``user`` field (litellm drops it), so a request names
itself for ``/sim/timings`` with an ``x-sim-user`` header. Routes: litellm builds
``{api_base}/models/{model}:streamGenerateContent?alt=sse`` for an ``api_base``
(the simulator's advertised one ends in ``/v1``) and
``https://generativelanguage.googleapis.com/{v1beta|v1alpha}/models/…`` without
one; each of those prefixes is served.
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

from harness.sim.server import (
    _echoed,
    _sleep_until,
    _token_schedule,
    answer_words,
    reasoning_words,
    stream_events,
)

if TYPE_CHECKING:
    from harness.sim.server import SimServer

__all__ = ["PREFIXES", "STAMP_HEADER", "generate", "routes"]

PREFIXES = ("", "/v1", "/v1beta", "/v1alpha")
STAMP_HEADER = "x-sim-user"
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 429: "RESOURCE_EXHAUSTED"}
_STATUS |= {500: "INTERNAL", 503: "UNAVAILABLE"}


def routes() -> list[tuple[str, bool]]:
    """(path, streamed) of every route the dialect serves."""
    out = []
    for prefix in PREFIXES:
        out.append((f"{prefix}/models/{{model}}:streamGenerateContent", True))
        out.append((f"{prefix}/models/{{model}}:generateContent", False))
    return out


def _texts(content: Any) -> list[str]:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return []
    return [str(p["text"]) for p in parts if isinstance(p, dict) and "text" in p]


def prompt_text(body: dict[str, Any]) -> str:
    """The system instruction's parts, then every content's: the OpenAI dialect's prompt text."""
    system = body.get("systemInstruction") or body.get("system_instruction")
    parts = _texts(system)
    for content in body["contents"]:
        parts.extend(_texts(content))
    return "\n".join(parts)


def error(status: int, message: str, details: list[dict[str, Any]] | None = None) -> web.Response:
    """An error in Google's shape."""
    payload: dict[str, Any] = {"code": status, "message": message, "status": _STATUS[status]}
    if details:
        payload["details"] = details
    return web.json_response({"error": payload}, status=status)


def _max_tokens(body: dict[str, Any]) -> Any:
    config = body.get("generationConfig") or body.get("generation_config") or {}
    if not isinstance(config, dict):
        return None
    return config.get("maxOutputTokens", config.get("max_output_tokens"))


def _usage(prompt: int, cached: int, thoughts: int, text: int, separate: bool) -> dict[str, int]:
    """usageMetadata so far; ``separate``: thoughts apart from candidates (Gemini's usual form)."""
    usage = {"promptTokenCount": prompt}
    candidates = text if separate else text + thoughts
    if candidates:
        usage["candidatesTokenCount"] = candidates
    if cached:
        usage["cachedContentTokenCount"] = cached
    if thoughts and separate:
        usage["thoughtsTokenCount"] = thoughts
    usage["totalTokenCount"] = prompt + text + thoughts
    return usage


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\r\n\r\n"


async def generate(server: SimServer, streamed: bool, request: web.Request) -> web.StreamResponse:
    """``POST …/models/{model}:streamGenerateContent`` (``streamed``) or ``:generateContent``."""
    received = time.perf_counter()
    server.requests_received += 1
    model = request.match_info["model"]
    try:
        body = await request.json()
        if not isinstance(body.get("contents"), list):
            raise TypeError
        prompt = prompt_text(body)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return error(400, "Invalid JSON payload: 'contents' is required")
    max_tokens = _max_tokens(body)
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        return error(400, "generationConfig.maxOutputTokens must be a positive integer")
    if streamed and request.query.get("alt") != "sse":
        # Without alt=sse Google streams one JSON array, which no client here reads.
        return error(400, "the simulator streams only with ?alt=sse")
    profile = server.profile_for(model)
    stamps = server.stamps_for(request.headers.get(STAMP_HEADER), received)
    rng = random.Random(f"{profile.seed}:{next(server._counter)}")
    if rng.random() < profile.error_rate:
        return error(500, "An internal error has occurred.")
    fault = server._fault(model, profile, rng)
    if fault == "rate_limit":
        delay = f"{profile.retry_after_s:g}"
        retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay}s"}
        response = error(429, "Resource has been exhausted (e.g. check quota).", [retry])
        response.headers["retry-after"] = delay
        return response
    if fault == "server_error":
        return error(503, "The model is overloaded. Please try again later.")
    if fault == "auth_error":
        # A careless proxy echoes the credential, wherever it came; the client must scrub it.
        echo = [f"{k}: {v}" for k, v in request.headers.items() if _echoed(k)]
        echo.append(f"query: {request.query_string}")
        text = "; ".join(echo)
        print(f"sim: rejected credentials ({text})", file=sys.stderr, flush=True)
        return error(401, f"API key not valid ({text})")
    words = answer_words(profile, model, prompt, max_tokens)
    if rng.random() < profile.abstain_rate:
        words = ["I", "don't", "know"][: max_tokens or 3]
    finish = "MAX_TOKENS" if max_tokens is not None and len(words) >= max_tokens else "STOP"
    reasoning = reasoning_words(profile, model, prompt)
    delays = _token_schedule(profile, len(reasoning) + len(words), rng)
    if fault == "empty":
        reasoning, words, delays = [], [], []
    if fault == "content_filter":
        words, finish = words[:2], "SAFETY"
        delays = delays[: len(reasoning) + 2]
    cached = profile.cache_read_tokens
    usage_prompt = len(prompt.split()) + cached
    separate = profile.usage_reasoning
    ident = uuid.uuid4().hex[:22]
    if not streamed:
        if fault in ("hang_before_first_token", "hang_mid_stream"):
            await asyncio.sleep(profile.hang_s)
        await _sleep_until(received + (delays[-1] if delays else 0.0))
        parts: list[dict[str, Any]] = []
        if reasoning:
            parts.append({"text": " ".join(reasoning), "thought": True})
        parts.append({"text": " ".join(words)})
        usage = _usage(usage_prompt, cached, len(reasoning), len(words), separate)
        return web.json_response(
            {
                "candidates": [
                    {
                        "content": {"parts": parts, "role": "model"},
                        "finishReason": finish,
                        "index": 0,
                    }
                ],
                "usageMetadata": usage,
                "modelVersion": model,
                "responseId": ident,
            }
        )
    events = stream_events(reasoning, words, delays, profile.tokens_per_chunk)
    head = {"usage": (usage_prompt, cached, separate), "model": model, "id": ident}
    try:
        return await _stream(request, events, received, finish, fault, profile.hang_s, stamps, head)
    except ConnectionError:
        return web.Response(status=499)  # the client went away


async def _stream(
    request: web.Request,
    events: list[tuple[float, dict[str, str]]],
    received: float,
    finish: str,
    fault: str | None,
    hang_s: float,
    stamps: dict[str, float | None] | None,
    head: dict[str, Any],
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    prompt, cached, separate = head["usage"]
    thoughts = text = 0

    def chunk(part: dict[str, Any] | None, finish_reason: str | None) -> bytes:
        candidate: dict[str, Any] = {"index": 0}
        if part is not None:
            candidate["content"] = {"parts": [part], "role": "model"}
        if finish_reason is not None:
            candidate["finishReason"] = finish_reason
            if finish_reason == "SAFETY":
                candidate["safetyRatings"] = [
                    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}
                ]
        return _event(
            {
                "candidates": [candidate],
                "usageMetadata": _usage(prompt, cached, thoughts, text, separate),
                "modelVersion": head["model"],
                "responseId": head["id"],
            }
        )

    if fault == "hang_before_first_token":
        await asyncio.sleep(hang_s)
    half = len(events) // 2
    # No inter-token delay: the whole answer in one write (as the OpenAI dialect
    # does), so that a capacity benchmark measures the client, not this server.
    bulk: list[bytes] | None = (
        [] if fault is None and events and events[-1][0] == events[0][0] else None
    )
    last_text = max((i for i, (_, d) in enumerate(events) if "content" in d), default=-1)
    # Google puts the finishReason on the last event that carries text.
    ends_here = len(events) - 1 if finish != "SAFETY" and fault != "no_finish" else -1
    for i, (due, delta) in enumerate(events):
        if i == half and fault == "hang_mid_stream":
            await asyncio.sleep(hang_s)
        if i == half and fault == "connection_reset":
            if request.transport is not None:
                request.transport.abort()
            return response
        if i == half and fault == "malformed_chunk":
            await response.write(b'data: {"candidates": [{"content": {"par\r\n\r\n')
        words = delta.get("reasoning_content") or delta.get("content") or ""
        n = len(words.split())
        if "reasoning_content" in delta:
            thoughts += n
            part: dict[str, Any] = {"text": words, "thought": True}
        else:
            text += n
            part = {"text": words}
        data = chunk(part, finish if i == ends_here else None)
        if bulk is not None and i < len(events) - 1:
            bulk.append(data)
            continue
        await _sleep_until(received + due)
        if bulk is not None:
            data = b"".join((*bulk, data))
            if stamps is not None:
                stamps["first_sent"] = stamps["last_sent"] = time.perf_counter()
        elif stamps is not None and "content" in delta:
            now = time.perf_counter()
            if stamps["first_sent"] is None:
                stamps["first_sent"] = now  # the first text: what TTFT measures
            if i == last_text:
                stamps["last_sent"] = now
        await response.write(data)
    if fault == "no_finish":
        await response.write_eof()
        return response
    if not events:  # the empty fault: one event, an empty text and the finish
        await response.write(chunk({"text": ""}, finish))
    elif ends_here == -1:  # SAFETY comes alone, without content
        await response.write(chunk(None, finish))
    await response.write_eof()
    return response
