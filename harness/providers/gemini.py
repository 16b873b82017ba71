"""The native Gemini transport: ``streamGenerateContent?alt=sse`` over one aiohttp session.

For ``gemini/…`` models (Google AI Studio), beside the litellm transport, for the
same reason as :mod:`harness.providers.direct`: the clock starts when the
request's bytes are handed to the socket (the direct client's request-sent
hook) and each event is stamped when the socket read that carried it returned
(:func:`harness.providers.sse.read_events`), not after litellm has parsed it.
The request is translated here, without importing litellm, the way litellm
1.110.2 translates it (``llms/vertex_ai/gemini``, ``llms/gemini/chat``), and
the rows were checked against litellm's on the simulator's Gemini dialect
(tests/e2e/test_gemini_dialect.py):

- URL: ``{api_base}/models/{model}:streamGenerateContent?alt=sse`` with an
  ``api_base`` (a query string the base carries is kept, before ``alt=sse``);
  without one ``https://generativelanguage.googleapis.com/v1beta/models/…``,
  ``v1alpha`` for the models litellm counts as Gemini 3 or newer;
- the key in the ``x-goog-api-key`` header (as litellm; ``GEMINI_API_KEY`` or
  ``GOOGLE_API_KEY`` when the endpoint has none), then the params'
  ``extra_headers``. A key in the URL (``?key=``) is scrubbed from every message;
- body: ``contents`` (user and system turns merged into ``user`` contents,
  assistant into ``model``; text parts only), the system messages as
  ``system_instruction`` when litellm's model table says the model takes one
  (else they stay in the user turn, as litellm does for unknown names),
  ``generationConfig`` with ``max_output_tokens``, ``temperature``, ``top_p``,
  ``top_k`` and ``stop`` as ``stop_sequences`` (litellm's snake_case keys, which
  Google accepts); ``user`` and ``metadata`` are dropped, as litellm drops them;
  ``extra_body`` is merged last (dict values one level deep). Any other param,
  and a sampling param on a model litellm flags ``supports_sampling_params:
  false``, is refused (:class:`UnsupportedRequest`): ``transport: auto`` then
  picks litellm;
- usage as litellm counts it: ``input_tokens`` is ``promptTokenCount`` (which
  includes the cached tokens) plus ``toolUsePromptTokenCount``,
  ``cached_input_tokens`` is ``cachedContentTokenCount``, ``reasoning_tokens``
  ``thoughtsTokenCount``; ``output_tokens`` is ``candidatesTokenCount``, plus
  the thoughts unless the counts show they are already in it (prompt +
  candidates = total);
- finish reasons through litellm's map (``STOP`` → ``stop``, ``MAX_TOKENS`` →
  ``length``, ``SAFETY``/``RECITATION``/… → ``content_filter``, unknown →
  ``stop``); a ``promptFeedback.blockReason`` is ``content_filter``. A
  ``CONTINUATION`` finish is ``length``: litellm's long-decode hops (a second
  request with the ``continuationToken``) are not followed;
- an HTTP error keeps its status and ``retry-after``; an ``error`` event in the
  stream is a ``stream_error``.
"""

from __future__ import annotations

import functools
import json
import os
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp

from harness.providers.direct import DirectClient, _fail, stream_headers, wire_model
from harness.providers.sse import read_events
from harness.providers.trace import Endpoint, StreamTrace, build_row
from harness.request import RequestSpec
from harness.secrets import is_secret_name, scrub

__all__ = [
    "FINISH_REASONS",
    "GEMINI_API_BASE",
    "GeminiClient",
    "UnsupportedRequest",
    "request_body",
    "stream_url",
    "supports",
]

GEMINI_API_BASE = "https://generativelanguage.googleapis.com"

_SAMPLING = frozenset({"temperature", "top_p", "top_k"})
_DROPPED = frozenset({"user", "metadata"})  # litellm does not send them to Gemini
SUPPORTED_PARAMS = _SAMPLING | _DROPPED | {"stop", "extra_headers", "extra_body"}
_EXTRA_BODY_SKIPPED = frozenset({"cache", "tags"})  # litellm keeps these for itself

# litellm's map (litellm_core_utils.core_helpers._FINISH_REASON_MAP, its Gemini
# keys); a reason it does not know becomes "stop", as there.
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "CONTINUATION": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "FINISH_REASON_UNSPECIFIED": "stop",
    "MALFORMED_FUNCTION_CALL": "stop",
    "LANGUAGE": "content_filter",
    "OTHER": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "TOO_MANY_TOOL_CALLS": "stop",
    "MALFORMED_RESPONSE": "stop",
    "NO_IMAGE": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "IMAGE_OTHER": "content_filter",
    "ESCALATION": "content_filter",
    "UNEXPECTED_TOOL_CALL": "stop",
    "MISSING_THOUGHT_SIGNATURE": "stop",
}

# litellm's VertexGeminiConfig._is_gemini_3_or_newer: the models before Gemini 3.
_BEFORE_3 = re.compile(r"^gemini-(?:[12](?:\.\d+)?|exp|(?:pro|flash)(?!-(?:lite-)?latest$))(?:-|$)")

_loads = json.loads


class UnsupportedRequest(ValueError):
    """A request the native client does not translate (litellm does)."""


@functools.cache
def _flags(name: str) -> tuple[bool, bool]:
    """(takes a system instruction, takes sampling params) for a bare model name.

    From litellm's bundled model table, read the way litellm reads it for the
    ``gemini`` provider: the ``gemini/<name>`` entry, then the bare ``<name>``.
    A name the table does not know takes no system instruction (litellm then
    folds the system prompt into the user turn) and takes sampling params.
    """
    from harness.cost.price_table import model_cost  # the table as JSON: no litellm import

    table = model_cost()
    entries = [e for e in (table.get(f"gemini/{name}"), table.get(name)) if isinstance(e, dict)]
    system = False
    for entry in entries:
        flag = entry.get("supports_system_messages")
        if flag is not None:
            system = flag is True
            break
    sampling = True
    bare = name.split("/")[-1]
    for key in (name, bare, f"vertex_ai/{bare}", f"gemini/{bare}"):
        flag = (table.get(key) or {}).get("supports_sampling_params")
        if isinstance(flag, bool):
            sampling = flag
            break
    return system, sampling


def supports(model: str, params: dict[str, Any]) -> bool:
    """Whether the native client translates every one of these provider params for ``model``."""
    if not set(params) <= SUPPORTED_PARAMS:
        return False
    return not (_SAMPLING & set(params)) or _flags(wire_model(model))[1]


def is_gemini_3_or_newer(name: str) -> bool:
    """litellm's rule, which picks the API version (``v1alpha`` from Gemini 3 on)."""
    name = name.split("/")[-1].lower()
    if not name or name.isdigit() or name.startswith("gemma-"):
        return False
    return _BEFORE_3.match(name) is None


def stream_url(endpoint: Endpoint) -> str:
    """The streaming URL litellm builds for this endpoint (see the module docstring)."""
    model = wire_model(endpoint.model)
    route = f"models/{model}:streamGenerateContent"
    if not endpoint.api_base:
        version = "v1alpha" if is_gemini_3_or_newer(model) else "v1beta"
        return f"{GEMINI_API_BASE}/{version}/{route}?alt=sse"
    parts = urlsplit(endpoint.api_base)
    path = parts.path.rstrip("/") + "/" + route
    query = f"{parts.query}&alt=sse" if parts.query else "alt=sse"
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def _user_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if isinstance(content, list):
        parts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text"):
                raise UnsupportedRequest("only text content is translated natively")
            if part.get("text"):
                parts.append({"text": str(part["text"])})
        return parts
    if content is None:
        return []
    raise UnsupportedRequest(f"message content of type {type(content).__name__}")


def _model_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    if message.get("tool_calls") or message.get("function_call"):
        raise UnsupportedRequest("assistant tool calls")
    parts: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content")
    if reasoning is not None:
        parts.append({"thought": True, "text": reasoning})
    content = message.get("content")
    if isinstance(content, list):
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text"):
                raise UnsupportedRequest("only text content is translated natively")
            parts.append({"text": str(part.get("text", ""))})
    elif isinstance(content, str):
        parts.append({"text": content})
    elif content is not None:
        raise UnsupportedRequest(f"message content of type {type(content).__name__}")
    return parts


def _system_part(content: Any) -> dict[str, Any]:
    if isinstance(content, list):
        return {"text": "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))}
    return {"text": str(content)}


def request_body(endpoint: Endpoint, request: RequestSpec) -> dict[str, Any]:
    """The ``streamGenerateContent`` body of a request (see the module docstring)."""
    params = {**endpoint.params, **request.extra}
    unknown = sorted(set(params) - SUPPORTED_PARAMS)
    if unknown:
        raise UnsupportedRequest(f"params not translated natively: {', '.join(unknown)}")
    model = wire_model(endpoint.model)
    takes_system, takes_sampling = _flags(model)
    if not takes_sampling and _SAMPLING & set(params):
        raise UnsupportedRequest(f"{model} takes no sampling params (litellm's model table)")
    messages = list(request.messages)
    system = []
    if takes_system:
        system = [_system_part(m.get("content")) for m in messages if m.get("role") == "system"]
        messages = [m for m in messages if m.get("role") != "system"]
        if system and not messages:
            messages = [{"role": "user", "content": "."}]  # as litellm: Gemini needs a turn
    # Consecutive user (and system) messages make one user turn, consecutive
    # assistant messages one model turn; a turn without parts is left out.
    contents: list[dict[str, Any]] = []
    run: tuple[str, list[dict[str, Any]]] | None = None
    for message in messages:
        role = message.get("role")
        if role in ("user", "system"):
            kind, parts = "user", _user_parts(message.get("content"))
        elif role == "assistant":
            kind, parts = "model", _model_parts(message)
        else:
            raise UnsupportedRequest(f"messages with role {role!r}")
        if run is None or run[0] != kind:
            if run is not None and run[1]:
                contents.append({"role": run[0], "parts": run[1]})
            run = (kind, [])
        run[1].extend(parts)
    if run is not None and run[1]:
        contents.append({"role": run[0], "parts": run[1]})
    if not contents:
        contents = [{"role": "user", "parts": [{"text": " "}]}]
    config: dict[str, Any] = {}
    for name in ("temperature", "top_p"):
        if params.get(name) is not None:
            config[name] = params[name]
    stop = params.get("stop")
    if isinstance(stop, str):
        config["stop_sequences"] = [stop]
    elif isinstance(stop, list):
        config["stop_sequences"] = stop
    config["max_output_tokens"] = request.max_tokens
    if params.get("top_k") is not None:
        config["top_k"] = params["top_k"]
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["system_instruction"] = {"parts": system}
    body["generationConfig"] = config
    extra_body = params.get("extra_body")
    if isinstance(extra_body, dict):
        for key, value in extra_body.items():
            if key in _EXTRA_BODY_SKIPPED:
                continue
            if isinstance(body.get(key), dict) and isinstance(value, dict):
                body[key].update(value)
            else:
                body[key] = value
    return body


def _url_secrets(url: str) -> tuple[str, ...]:
    """Values of secret-named query parameters (``?key=…``) in a URL."""
    return tuple(v for k, v in parse_qsl(urlsplit(url).query) if v and is_secret_name(k))


class GeminiClient(DirectClient):
    """Streams Gemini ``streamGenerateContent`` through one aiohttp session (the direct client's).

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
            _fail(trace, "unsupported_request", f"transport gemini: {exc}", ())
            return build_row(trace, endpoint, request)
        # encoded: the model's ':' and a base's query reach the server as written.
        url, proxy = self._target(stream_url(endpoint), encoded=True)
        key = (
            endpoint.api_key or os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
        )
        extra_headers = {**endpoint.params, **request.extra}.get("extra_headers")
        headers = stream_headers(extra_headers, "x-goog-api-key", key)
        row = await self._exchange(endpoint, request, trace, url, proxy, headers, body, _read)
        hidden = (key, *_url_secrets(str(url)))
        if row.get("error_message"):
            row["error_message"] = scrub(row["error_message"], *hidden)
        return row


class _Stream:
    """One stream's events into its trace; the last ``usageMetadata`` seen."""

    __slots__ = ("trace", "usage")

    def __init__(self, trace: StreamTrace) -> None:
        self.trace = trace
        self.usage: dict[str, Any] | None = None

    def on_event(self, payload: str, now: float) -> bool | None:
        """Apply one GenerateContentResponse: None to go on, False if the stream failed."""
        trace = self.trace
        try:
            chunk = _loads(payload)
            error = chunk.get("error")
            if error is not None:
                if isinstance(error, dict):
                    error = f"{error.get('status', 'UNKNOWN')} - {error.get('message')}"
                _fail(trace, "stream_error", f"error event: {error}", ())
                return False
            trace.on_chunk(now)
            for candidate in chunk.get("candidates") or ():
                content = candidate.get("content")
                if content:
                    text = reasoning = ""
                    for part in content.get("parts") or ():
                        value = part.get("text")
                        if value:
                            if not isinstance(value, str):
                                raise TypeError("part.text is not a string")
                            if part.get("thought") is True:
                                reasoning += value
                            else:
                                text += value
                    if reasoning:
                        trace.on_reasoning(now, reasoning)
                    if text:
                        trace.on_text(now, text)
                finish = candidate.get("finishReason")
                if finish:
                    trace.finish_reason = FINISH_REASONS.get(str(finish), "stop")
            feedback = chunk.get("promptFeedback")
            if feedback and feedback.get("blockReason"):
                trace.finish_reason = "content_filter"  # the prompt itself was blocked
            usage = chunk.get("usageMetadata")
            if usage:
                self.usage = usage
        except (ValueError, AttributeError, TypeError) as exc:
            _fail(trace, "malformed_stream", f"{type(exc).__name__}: {exc}: {payload[:200]!r}", ())
            return False
        return None


def usage_counts(usage: dict[str, Any] | None) -> dict[str, int | None]:
    """A row's token counts from Gemini's ``usageMetadata``, as litellm counts them."""
    if not usage:
        return {}

    def count(name: str) -> int:
        value = usage.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    prompt, tool_use, total = (
        count("promptTokenCount"),
        count("toolUsePromptTokenCount"),
        count("totalTokenCount"),
    )
    candidates = count("responseTokenCount") or count("candidatesTokenCount")
    thoughts = usage.get("thoughtsTokenCount")
    reasoning = thoughts if isinstance(thoughts, int) else None
    output = candidates
    # Some models count the thoughts inside candidatesTokenCount: then the parts add up.
    if prompt + count("candidatesTokenCount") + tool_use != total and reasoning:
        output += reasoning
    cached = usage.get("cachedContentTokenCount")
    return {
        "input_tokens": prompt + tool_use,
        "output_tokens": output,
        "cached_input_tokens": cached if isinstance(cached, int) else None,
        "cache_write_tokens": None,  # Gemini reports no cache writes
        "reasoning_tokens": reasoning,
    }


async def _read(response: aiohttp.ClientResponse, trace: StreamTrace, t0: float) -> bool:
    """Read the event stream into ``trace``; True if it ended after a finishReason.

    Gemini sends no end-of-stream event: the body ends after the event that
    carries the finishReason.
    """
    stream = _Stream(trace)
    try:
        outcome = await read_events(response, trace, t0, stream.on_event)
        if outcome is not None:
            return outcome
        if trace.finish_reason is not None:
            return True
        kind = response.headers.get("Content-Type", "?")
        _fail(trace, "stream_error", f"stream ended before a finishReason ({kind})", ())
        return False
    finally:
        trace.usage = usage_counts(stream.usage)
