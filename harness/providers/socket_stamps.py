"""Socket stamps for litellm's requests: when each was written, when each block arrived.

litellm's clock problem is that the code that parses the stream (litellm) is
not the code that times it (:mod:`harness.providers.litellm`): a clock
started at the call counts litellm's own request preparation as TTFT, and a
chunk stamped when litellm yields it carries litellm's parsing and, worse,
every other request's: one event loop prepares and parses all concurrent
requests (~0.4 ms of CPU per chunk), so a block that arrived while the loop
was busy is read late. Stamping the reads on that loop was measured here: at
32 streams TTFT came out hundreds of ms late. So litellm is handed an HTTP
client whose transport does the I/O elsewhere and takes the stamps there:

- :class:`StampingTransport` runs litellm's own aiohttp transport (same pool
  behaviour, same exception mapping) on a daemon thread with an event loop of
  its own, which runs nothing else. Its aiohttp session has a trace hook that
  stamps the request immediately before its bytes are handed to the socket
  (``on_request_chunk_sent``, as in :mod:`harness.providers.direct`); each
  block of the response is stamped on that thread when its read returns, and
  handed with its stamp to the request's own loop.
- Requests run concurrently, so the stamps are per request: the caller opens a
  :func:`stamping` scope (a context variable holding one :class:`SocketStamps`),
  read by the transport in the request's task; requests outside any scope (a
  judge's call) go through the same thread unstamped.
- Alignment: litellm parses lazily (an SSE line iterator over the byte stream,
  pulled by its chunk iterator), so when it yields a parsed chunk the block
  that carried it is the latest block it has taken, and the chunk is stamped
  with that block's arrival (:attr:`SocketStamps.last_block`). A chunk litellm
  held back while it took the next block would be stamped late by one block;
  benchmarks/dialect_clock.py measures the result against the simulator's
  write stamps.

One process-wide client serves every request (one pool: a request pays no
extra TCP/TLS handshake): an ``AsyncHTTPHandler`` passed as ``client=`` to the
providers whose litellm handler takes one (:data:`HANDLER_PROVIDERS`:
Anthropic, Bedrock, Cohere, Gemini/Vertex, hosted vLLM), and
``litellm.aclient_session`` for those litellm sends through the OpenAI SDK
(OpenAI, Azure, OpenAI-compatible providers). A provider that uses neither
leaves :attr:`SocketStamps.sent` unset, and its rows say ``clock: call``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx

__all__ = [
    "HANDLER_PROVIDERS",
    "SocketStamps",
    "StampingTransport",
    "client_kwargs",
    "stamping",
]

_perf_counter = time.perf_counter

# litellm providers (``get_llm_provider``'s name) whose litellm 1.110 handler
# streams through an ``AsyncHTTPHandler`` given as ``client=`` (read in
# litellm/main.py: anthropic's own handler, bedrock's converse and invoke
# handlers, the others through BaseLLMHTTPHandler). Any other provider gets no
# ``client=`` (the OpenAI-SDK ones would reject it) and is stamped if it uses
# ``litellm.aclient_session``; otherwise its rows say ``clock: call``.
HANDLER_PROVIDERS = frozenset(
    {
        "anthropic",
        "bedrock",
        "cohere",
        "cohere_chat",
        "gemini",
        "vertex_ai",
        "vertex_ai_beta",
        "hosted_vllm",
    }
)


class SocketStamps:
    """One request's socket stamps, on :func:`time.perf_counter`.

    ``sent``: when the request's bytes were handed to the socket (None: the
    request never went through the stamping transport). ``last_block``: when
    the latest block of the response body handed to litellm arrived (its read
    returned on the socket thread). ``blocks``: how many were handed over.
    """

    __slots__ = ("blocks", "last_block", "sent")

    def __init__(self) -> None:
        self.sent: float | None = None
        self.last_block: float | None = None
        self.blocks = 0

    def restart(self) -> None:
        """A new attempt of the same request (litellm may resend): its stamps replace these."""
        self.sent = self.last_block = None
        self.blocks = 0


_CURRENT: ContextVar[SocketStamps | None] = ContextVar("harness_socket_stamps", default=None)


@contextlib.contextmanager
def stamping(stamps: SocketStamps) -> Iterator[SocketStamps]:
    """Requests sent inside this scope (and tasks started in it) are stamped into ``stamps``."""
    token = _CURRENT.set(stamps)
    try:
        yield stamps
    finally:
        _CURRENT.reset(token)


class _QueuedStream(httpx.AsyncByteStream):
    """A response body read by the socket thread: blocks arrive with their arrival stamps."""

    def __init__(
        self, queue: asyncio.Queue[tuple[float | None, Any]], stamps: SocketStamps, pump: Any
    ) -> None:
        self._queue = queue
        self._stamps = stamps
        self._pump = pump

    async def __aiter__(self) -> AsyncIterator[bytes]:
        stamps, get = self._stamps, self._queue.get
        while True:
            stamp, item = await get()
            if stamp is None:
                if item is None:
                    return
                raise item
            # The block is handed to litellm now; it arrived at ``stamp``.
            stamps.last_block = stamp
            stamps.blocks += 1
            yield item

    async def aclose(self) -> None:
        self._pump.cancel()  # stops the socket thread's read; it closes the response


class _SocketThread:
    """An event loop of its own, in a daemon thread, that does every stamped request's I/O."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="harness-socket-stamps", daemon=True
        )
        self.thread.start()
        # A thread waiting for the GIL gets it after the switch interval (5 ms
        # by default): that is how late an arrival stamp can be while litellm
        # parses on the other thread.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))


_thread: _SocketThread | None = None
_thread_lock = threading.Lock()


def _socket_thread() -> _SocketThread:
    global _thread
    with _thread_lock:
        # A forked child has the object but not the thread: start its own.
        if _thread is None or _thread.pid != os.getpid():
            _thread = _SocketThread()
            atexit.register(_shutdown, _thread)
        return _thread


def _shutdown(thread: _SocketThread) -> None:
    """At exit: close the pool on its own loop, then stop the loop.

    Left to interpreter teardown, aiohttp's and litellm's finalizers run after
    their modules are gone and print tracebacks.
    """
    if thread.pid != os.getpid() or not thread.thread.is_alive():
        return
    transport = _clients.get("transport")
    if transport is not None:
        done = asyncio.run_coroutine_threadsafe(transport.inner.aclose(), thread.loop)
        with contextlib.suppress(Exception):
            done.result(timeout=2.0)
    thread.loop.call_soon_threadsafe(thread.loop.stop)
    thread.thread.join(timeout=2.0)


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the waiting request was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class StampingTransport(httpx.AsyncBaseTransport):
    """An httpx transport whose I/O runs on the socket thread, around ``inner``.

    Each request's stamps come from its :func:`stamping` scope (a fresh, unused
    :class:`SocketStamps` outside any scope). The socket thread writes the
    request (stamping the write), then reads the response's blocks, stamping
    each as its read returns, and hands them to the request's loop. That
    thread runs nothing else, so its stamps do not wait for the request's
    loop, however busy litellm keeps it with preparing and parsing other
    requests; they wait at most for the GIL (the interpreter's switch
    interval, set to 1 ms when the thread starts).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        stamps = _CURRENT.get() or SocketStamps()
        stamps.restart()
        loop = asyncio.get_running_loop()
        head: asyncio.Future[httpx.Response] = loop.create_future()
        queue: asyncio.Queue[tuple[float | None, Any]] = asyncio.Queue()
        pump = asyncio.run_coroutine_threadsafe(
            self._pump(request, stamps, loop, head, queue), _socket_thread().loop
        )
        try:
            response = await head
        except BaseException:
            pump.cancel()
            raise
        response.stream = _QueuedStream(queue, stamps, pump)
        return response

    async def _pump(
        self,
        request: httpx.Request,
        stamps: SocketStamps,
        loop: asyncio.AbstractEventLoop,
        head: asyncio.Future[httpx.Response],
        queue: asyncio.Queue[tuple[float | None, Any]],
    ) -> None:
        """On the socket thread: send, hand over the response's head, then pump its blocks."""
        _CURRENT.set(stamps)  # this task's own context: the write hook reads it
        call = loop.call_soon_threadsafe
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException as exc:
            call(_resolve, head, None, exc)
            raise
        body = response.stream
        call(_resolve, head, response, None)
        put = queue.put_nowait
        try:
            async for block in body:  # type: ignore[union-attr]
                call(put, (_perf_counter(), block))
        except BaseException as exc:
            call(put, (None, exc))
            raise
        call(put, (None, None))

    async def aclose(self) -> None:
        # The transport (and its pool) serves the whole process: litellm closes
        # the httpx clients it makes around it (a connection-error retry makes
        # one and closes it), which must not cut the other requests' streams.
        return None


async def _on_chunk_sent(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestChunkSentParams,
) -> None:
    # aiohttp calls this right before it writes the body (headers go in the
    # same write), in the task that writes it: that task copied the request's
    # context, so the scope's stamps are visible here.
    stamps = _CURRENT.get()
    if stamps is not None and stamps.sent is None:
        stamps.sent = _perf_counter()


def _session() -> aiohttp.ClientSession:
    """An aiohttp session like litellm's own, plus the write-stamping hook."""
    from litellm.constants import AIOHTTP_KEEPALIVE_TIMEOUT, AIOHTTP_TTL_DNS_CACHE

    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(_on_chunk_sent)
    return aiohttp.ClientSession(
        # No connection cap: the runner caps concurrency, and a request
        # waiting for a pooled connection would wait before its write anyway.
        connector=aiohttp.TCPConnector(
            limit=0,
            limit_per_host=0,
            keepalive_timeout=AIOHTTP_KEEPALIVE_TIMEOUT,
            ttl_dns_cache=AIOHTTP_TTL_DNS_CACHE,
        ),
        cookie_jar=aiohttp.DummyCookieJar(),
        trace_configs=[trace],
    )


_clients: dict[str, Any] = {}


def _transport() -> StampingTransport:
    transport = _clients.get("transport")
    if transport is None:
        from litellm.llms.custom_httpx.aiohttp_transport import LiteLLMAiohttpTransport

        # A factory, not a session: litellm's transport opens the session in
        # the running loop, and reopens it if a later loop uses it.
        transport = StampingTransport(LiteLLMAiohttpTransport(client=_session))
        _clients["transport"] = transport
    return transport


def client_kwargs(litellm: Any, model: str, api_base: str | None) -> dict[str, Any]:
    """The ``acompletion`` kwargs that route ``model`` through the stamping transport.

    ``{"client": handler}`` for the providers in :data:`HANDLER_PROVIDERS`; for
    the others ``{}``, after making the stamping client ``litellm.aclient_session``
    (the OpenAI SDK's http client) unless the process already set one of its own.
    """
    provider = _providers.get((model, api_base))
    if provider is None:
        try:
            provider = str(litellm.get_llm_provider(model=model, api_base=api_base)[1])
        except Exception:  # litellm names the problem in the call itself, as a row
            provider = ""
        _providers[(model, api_base)] = provider
    if provider in HANDLER_PROVIDERS:
        handler = _clients.get("handler")
        if handler is None:
            from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

            handler = AsyncHTTPHandler(transport=_transport())
            _clients["handler"] = handler
        return {"client": handler}
    if litellm.aclient_session is None:
        litellm.aclient_session = httpx.AsyncClient(transport=_transport(), follow_redirects=True)
    return {}


_providers: dict[tuple[str, str | None], str] = {}
