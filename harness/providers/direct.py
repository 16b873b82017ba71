"""The direct transport: OpenAI-compatible chat completions over one aiohttp session.

Beside the litellm transport, for endpoints that speak the OpenAI API
(``openai/…``, ``hosted_vllm/…``, the simulator, …). It exists for the clock:
litellm builds several pydantic objects per streamed chunk (~0.4 ms of CPU), so
once one process reads a few dozen fast streams every timestamp it takes is
late, and its own pre-request work is counted as TTFT. Here the request body is
serialised before ``t0``, and each chunk costs one ``json.loads`` plus a few
dict look-ups.

The clock starts when the request's bytes are handed to the socket, not when
:meth:`DirectClient.send` is called. On Python < 3.12 aiohttp writes a request
body from a task of its own, which runs only after every other ready task has
had its turn: when a runner starts 128 requests at once, the first one's bytes
leave after all 128 have been prepared (p99 ~15 ms later here). A clock started at
the call would count that as the provider's latency. So ``t0`` is stamped from
aiohttp's ``on_request_chunk_sent`` trace signal, immediately before the write;
the time from the call to that write (connection acquisition, a new connection's
TCP/TLS handshake, the client's own queueing) is in the row as
``send_delay_s``, and left out of every other offset. Offsets are read with
:func:`time.perf_counter`. All events that arrive in one socket read share that
read's timestamp: that is when the client could first see them. The row is
built by :func:`~harness.providers.trace.build_row`, so the metric definitions
are those of the litellm transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from harness.providers.sse import read_events
from harness.providers.trace import (
    Endpoint,
    StreamTrace,
    build_row,
    parse_retry_after,
    record_error,
    request_timeout,
    usage_counts,
)
from harness.request import RequestSpec
from harness.secrets import scrub

__all__ = ["OPENAI_API_BASE", "DirectClient", "chat_completions_url", "request_body", "wire_model"]

OPENAI_API_BASE = "https://api.openai.com/v1"
"""Where ``openai/…`` and unprefixed models go when the endpoint has no ``api_base``."""

_ERROR_BODY_LIMIT = 64 * 1024
_DONE = "[DONE]"
_loads = json.loads
_perf_counter = time.perf_counter


class _SendClock:
    """When this request's body was handed to the socket (set by the trace signal)."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent: float | None = None


async def _on_body_sent(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestChunkSentParams,
) -> None:
    # Called by aiohttp right before it writes the body (the headers go in the
    # same write), in the task that writes it: no await in between.
    clock = context.trace_request_ctx
    if isinstance(clock, _SendClock) and clock.sent is None:
        clock.sent = _perf_counter()


class DirectClient:
    """Streams chat completions from OpenAI-compatible endpoints through one aiohttp session.

    The session (and its keep-alive connection pool) is created by the first
    :meth:`send`, inside the running event loop, and belongs to that loop: use
    one client per loop and :meth:`close` it (or ``async with``) when done.
    """

    def __init__(self, *, limit: int = 0, keepalive_s: float = 60.0) -> None:
        """``limit`` caps open connections (0: no cap; the runner already caps concurrency)."""
        self._limit = limit
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._urls: dict[str, tuple[URL, str | None]] = {}

    async def __aenter__(self) -> DirectClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session and its connections; a later :meth:`send` opens a new one."""
        if self._session is not None:
            await self._session.close()
        self._session = None
        self._loop = None

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is not None and not self._session.closed:
            if self._loop is not loop:
                raise RuntimeError("DirectClient is bound to the event loop it was first used in")
            return self._session
        connector = aiohttp.TCPConnector(
            limit=self._limit, limit_per_host=0, keepalive_timeout=self._keepalive_s
        )
        trace = aiohttp.TraceConfig()
        trace.on_request_chunk_sent.append(_on_body_sent)
        # No aiohttp timeouts: the endpoint's timeout is applied around the
        # whole request by asyncio.timeout, like in the litellm transport.
        self._session = aiohttp.ClientSession(
            connector=connector,
            trace_configs=[trace],
            timeout=aiohttp.ClientTimeout(total=None),
            # Proxies are resolved once per base URL (see _target) instead of
            # from the environment on every request, inside the timed window.
            trust_env=False,
        )
        self._loop = loop
        return self._session

    def _target(self, url: str, *, encoded: bool = False) -> tuple[URL, str | None]:
        """The parsed URL and its proxy, cached per URL (every dialect's client uses it)."""
        cached = self._urls.get(url)
        if cached is None:
            cached = (URL(url, encoded=encoded), _env_proxy(url))
            self._urls[url] = cached
        return cached

    async def send(self, endpoint: Endpoint, request: RequestSpec) -> dict[str, Any]:
        """Send one streamed request and return its row (never raises on API errors).

        The row has no cost: the pipeline prices it (:func:`harness.cost.pricing.price_row`).
        ``send_delay_s`` (not a :func:`build_row` column) is the time from this
        call to the request being written; None if it never was.
        Raises :class:`ValueError` only for an endpoint the direct transport
        cannot address (no ``api_base`` and a non-OpenAI provider prefix).
        """
        url, proxy = self._target(chat_completions_url(endpoint))
        body = request_body(endpoint, request)
        key = f"Bearer {endpoint.api_key}" if endpoint.api_key else None
        headers = stream_headers(endpoint.params.get("extra_headers"), "Authorization", key)
        trace = StreamTrace(started_at=datetime.now(UTC))
        return await self._exchange(
            endpoint, request, trace, url, proxy, headers, body, _read_chat_stream
        )

    async def _exchange(
        self,
        endpoint: Endpoint,
        request: RequestSpec,
        trace: StreamTrace,
        url: URL,
        proxy: str | None,
        headers: dict[str, str],
        body: dict[str, Any],
        read: StreamReader,
    ) -> dict[str, Any]:
        """POST ``body`` and read its stream with ``read`` (one per dialect): the clock,
        the timeout, the error classes and the row are the same for every dialect."""
        session = self._get_session()
        data = json.dumps(body, separators=(",", ":")).encode()
        response: aiohttp.ClientResponse | None = None
        complete = False
        clock = _SendClock()
        called = t0 = _perf_counter()  # t0 moves to the write once it has happened
        try:
            async with request_timeout(endpoint, trace):
                response = await session.post(
                    url,
                    data=data,
                    headers=headers,
                    proxy=proxy,
                    allow_redirects=False,
                    trace_request_ctx=clock,
                )
                if clock.sent is not None:
                    t0 = clock.sent
                if response.status >= 300:
                    await _record_http_error(trace, response, endpoint.known_secrets)
                else:
                    complete = await read(response, trace, t0)
        except asyncio.CancelledError:
            if response is not None:
                response.close()
            raise
        except aiohttp.ClientPayloadError as exc:
            # The body broke off mid-stream (e.g. a cut chunked transfer).
            _fail(trace, "stream_error", f"stream cut: {exc}", endpoint.known_secrets)
        except (aiohttp.ClientConnectionError, ConnectionError) as exc:
            error_type = "stream_error" if trace.text_offsets else "connection_error"
            _fail(trace, error_type, str(exc) or type(exc).__name__, endpoint.known_secrets)
        except Exception as exc:  # every other failure of the request becomes a row
            record_error(trace, exc, *endpoint.known_secrets)
        if trace.end_s is None:
            trace.end_s = _perf_counter() - (clock.sent or called)
        if response is not None:
            await _finish(response, complete)
        row = build_row(trace, endpoint, request)
        row["send_delay_s"] = None if clock.sent is None else clock.sent - called
        row["t0_perf_s"] = t0  # the clock's start on this host's monotonic clock
        return row


StreamReader = Callable[[aiohttp.ClientResponse, StreamTrace, float], Awaitable[bool]]
"""Reads one dialect's event stream into the trace; True when it ended cleanly."""


async def _read_chat_stream(
    response: aiohttp.ClientResponse, trace: StreamTrace, t0: float
) -> bool:
    """The OpenAI chat-completions stream (:func:`~harness.providers.sse.read_events`'s
    framing), its usage into the trace."""
    stream = _ChatStream(trace)
    complete = await read_events(response, trace, t0, stream.on_event)
    trace.usage = usage_counts(stream.usage)
    if complete is not None:
        return complete
    if trace.finish_reason is not None:
        return True  # some servers omit [DONE]; a finish_reason is an ending
    kind = response.headers.get("Content-Type", "?")
    _fail(trace, "stream_error", f"stream ended before [DONE] or a finish_reason ({kind})", ())
    return False


class _ChatStream:
    """One chat-completions stream's events into its trace; the last usage seen.

    Per event one ``json.loads`` (of a str: faster than of bytes) and a few dict
    look-ups.
    """

    __slots__ = ("trace", "usage")

    def __init__(self, trace: StreamTrace) -> None:
        self.trace = trace
        self.usage: Any = None

    def on_event(self, payload: str, now: float) -> bool | None:
        """Apply one event: None to go on, True at ``[DONE]``, False if the stream failed."""
        if payload == _DONE:
            return True
        trace = self.trace
        try:
            chunk = _loads(payload)
            choices = chunk.get("choices")
            error = chunk.get("error")
            if error is not None:
                _fail(trace, "stream_error", f"error event: {_error_text(error)}", ())
                return False
            trace.on_chunk(now)
            if choices:
                for choice in choices:
                    delta = choice.get("delta")
                    if delta:
                        # DeepSeek and vLLM name it reasoning_content; OpenRouter, Ollama reasoning.
                        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                        if reasoning:
                            trace.on_reasoning(now, reasoning if isinstance(reasoning, str) else "")
                        content = delta.get("content")
                        if content:
                            if not isinstance(content, str):
                                raise TypeError("delta.content is not a string")
                            trace.on_text(now, content)
                        tool_calls = delta.get("tool_calls") or delta.get("function_call")
                        if tool_calls:
                            trace.on_tools(now, tool_calls)
                    finish = choice.get("finish_reason")
                    if finish:
                        trace.finish_reason = str(finish)
            chunk_usage = chunk.get("usage")
            if chunk_usage:
                self.usage = chunk_usage
        except (ValueError, AttributeError, TypeError) as exc:
            # ValueError is a JSONDecodeError; the others a chunk that is JSON but
            # not an object of the expected shape.
            _fail(trace, "malformed_stream", f"{type(exc).__name__}: {exc}: {payload[:200]!r}", ())
            return False
        return None


async def _record_http_error(
    trace: StreamTrace, response: aiohttp.ClientResponse, secrets: tuple[str | None, ...]
) -> None:
    """An error status: its type from the status code, its message from the body."""
    status = response.status
    body = b""
    while len(body) < _ERROR_BODY_LIMIT:
        part = await response.content.read(_ERROR_BODY_LIMIT - len(body))
        if not part:
            break
        body += part
    text = body.decode(errors="replace").strip()
    with contextlib.suppress(ValueError, AttributeError):  # else: keep the raw text
        text = _error_text(json.loads(text).get("error", text))
    trace.http_status = status
    trace.error_type = "rate_limited" if status == 429 else f"http_{status}"
    trace.retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
    reason = response.reason or ""
    trace.error_message = scrub(f"HTTP {status} {reason}: {text}".strip(), *secrets)[:2000]


def _fail(
    trace: StreamTrace, error_type: str, message: str, secrets: tuple[str | None, ...]
) -> None:
    trace.error_type = error_type
    trace.error_message = scrub(message, *secrets)[:2000]


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


async def _finish(response: aiohttp.ClientResponse, complete: bool) -> None:
    """Hand the connection back to the pool if the stream ended cleanly, else close it.

    After ``[DONE]`` only the end of the chunked body is normally left; reading
    it lets aiohttp reuse the connection (an unread body forces a close, and
    the next request would pay for a new one inside its timed window).
    """
    if not complete:
        # A stream we stopped reading (malformed, cut, failed) may still have
        # bytes in flight; a reused connection would hand them to the next
        # request, which then waits for a response that never starts.
        response.close()
        return
    if not response.content.at_eof():
        try:
            async with asyncio.timeout(1.0):
                while await response.content.readany():
                    pass
        except (TimeoutError, aiohttp.ClientError):
            response.close()
            return
    response.release()


def wire_model(model: str) -> str:
    """The model name the server expects: the litellm model without its provider prefix.

    ``openai/gpt-4o-mini`` → ``gpt-4o-mini``;
    ``hosted_vllm/meta-llama/Llama-3.1-8B`` → ``meta-llama/Llama-3.1-8B``.
    """
    return model.split("/", 1)[1] if "/" in model else model


def chat_completions_url(endpoint: Endpoint) -> str:
    """``{api_base}/chat/completions``; OpenAI's API for ``openai/…`` without a base.

    Raises :class:`ValueError` for other providers without ``api_base``: their
    address is only known to litellm.
    """
    base = endpoint.api_base
    if not base:
        provider = endpoint.model.split("/", 1)[0] if "/" in endpoint.model else "openai"
        if provider != "openai":
            raise ValueError(
                f"the direct transport needs an api_base for {endpoint.model!r} "
                f"(provider {endpoint.provider!r})"
            )
        base = OPENAI_API_BASE
    return base.rstrip("/") + "/chat/completions"


def request_body(endpoint: Endpoint, request: RequestSpec) -> dict[str, Any]:
    """The JSON body: a streamed request with usage, then provider params and request extras.

    ``extra_headers`` in the params become HTTP headers (see :meth:`DirectClient.send`)
    and ``extra_body`` is merged into the body, as in the OpenAI client and litellm.
    """
    params = dict(endpoint.params)
    params.pop("extra_headers", None)
    extra = dict(request.extra)
    extra_bodies = [params.pop("extra_body", None), extra.pop("extra_body", None)]
    body: dict[str, Any] = {
        "model": wire_model(endpoint.model),
        "messages": request.messages,
        "max_tokens": request.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        **params,
        **extra,
    }
    for extra_body in extra_bodies:
        if isinstance(extra_body, dict):
            body.update(extra_body)
    # The metrics need a stream whatever a param says.
    body["stream"] = True
    return body


def stream_headers(
    extra_headers: Any,
    key_header: str,
    key: str | None,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """The headers of a streamed request: JSON in, an uncompressed event stream out, the
    config's ``extra_headers``, then ``key_header: key`` unless the config set that header
    itself (a ``${VAR}`` in extra_headers wins: it is how another auth scheme is reached)."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        # A compressed event stream would be buffered by the compressor and
        # delivered late; ask for the bytes as they are produced.
        "Accept-Encoding": "identity",
        **(base or {}),
    }
    if isinstance(extra_headers, dict):
        headers.update({str(k): str(v) for k, v in extra_headers.items()})
    if key and not any(k.lower() == key_header.lower() for k in headers):
        headers[key_header] = key
    return headers


def _env_proxy(url: str) -> str | None:
    """The proxy the environment asks for (``*_proxy``, ``no_proxy``), as httpx would use."""
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)
