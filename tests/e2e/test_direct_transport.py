"""The direct transport against the real simulator (same rows as litellm) and a raw server.

The simulator checks that the direct path and the litellm path record the same
text, usage, finish reason and chunk count for the same requests, with TTFT and
ITL that agree with the profile. A hand-written HTTP server (asyncio streams,
no aiohttp) produces what the simulator never does: event streams split at
awkward byte boundaries, malformed JSON, streams cut short, a 429, an error
event inside the stream.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from harness.providers.direct import DirectClient, chat_completions_url, request_body, wire_model
from harness.providers.litellm import import_litellm, send
from harness.providers.trace import Endpoint
from harness.request import RequestSpec
from harness.sim import SimProcess, SimProfile

STEADY = SimProfile(ttft_ms=80, itl_ms=10, output_tokens=12, seed=3)
PROMPTS = [
    "What is the capital of France?",
    "Name three primary colours, please.",
    "Explain why the sky looks blue during the day.",
]


@pytest.fixture(scope="module")
def direct_sim() -> Iterator[SimProcess]:
    profiles = {
        "steady": STEADY,
        "broken": SimProfile(error_rate=1.0),
        "slow": SimProfile(ttft_ms=2000, itl_ms=10, output_tokens=4),
    }
    with SimProcess(profiles) as process:
        yield process


def endpoint(
    api_base: str | None,
    model: str = "openai/steady",
    *,
    transport: str = "direct",
    timeout_s: float = 10.0,
    params: dict[str, Any] | None = None,
    api_key: str | None = "sim-no-key",
) -> Endpoint:
    return Endpoint(
        provider="p",
        model=model,
        simulated=True,
        api_base=api_base,
        api_key=api_key,
        params=params or {},
        timeout_s=timeout_s,
        transport=transport,
    )


def spec(prompt: str = PROMPTS[0], max_tokens: int = 32, case: str = "c0") -> RequestSpec:
    return RequestSpec(
        suite="s",
        suite_kind="latency",
        case_id=case,
        repeat=0,
        provider="p",
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
    )


def direct_rows(ep: Endpoint, requests: list[RequestSpec]) -> list[dict[str, Any]]:
    """Send the requests one after another through one DirectClient."""

    async def run() -> list[dict[str, Any]]:
        async with DirectClient() as client:
            return [await client.send(ep, r) for r in requests]

    return asyncio.run(run())


# --- same rows as the litellm path ------------------------------------------------


def test_direct_and_litellm_record_the_same_responses(direct_sim: SimProcess) -> None:
    requests = [spec(p, case=f"c{i}") for i, p in enumerate(PROMPTS)]
    requests.append(spec(PROMPTS[2], max_tokens=5, case="short"))  # cut by max_tokens
    warmup = spec("warm up", case="warmup")

    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        litellm = import_litellm()
        via_litellm = endpoint(direct_sim.api_base, transport="litellm")
        await send(litellm, via_litellm, warmup)  # litellm's one-off first-call setup
        slow = [await send(litellm, via_litellm, r) for r in requests]
        async with DirectClient() as client:
            direct = endpoint(direct_sim.api_base)
            await client.send(direct, warmup)
            fast = [await client.send(direct, r) for r in requests]
        return slow, fast

    slow, fast = asyncio.run(run())
    for a, b in zip(slow, fast, strict=True):
        assert a["status"] == b["status"] == "ok", (a["error_message"], b["error_message"])
        assert b["transport"] == "direct" and a["transport"] == "litellm"
        assert "cost_usd" not in b  # transports know no prices: the pipeline prices rows
        for key in (
            "response_text",
            "output_tokens",
            "input_tokens",
            "finish_reason",
            "text_chunks",
            "tokens_mismatch",
        ):
            assert a[key] == b[key], key
    assert fast[-1]["finish_reason"] == "length" and fast[-1]["output_tokens"] == 5
    assert fast[0]["finish_reason"] == "stop" and fast[0]["output_tokens"] == 12


@pytest.mark.parametrize("transport", ["direct", "litellm"])
def test_timings_agree_with_the_profile(direct_sim: SimProcess, transport: str) -> None:
    ep = endpoint(direct_sim.api_base, transport=transport)
    requests = [spec(PROMPTS[i % 3], case=f"c{i}") for i in range(9)]

    async def run() -> list[dict[str, Any]]:
        # Low concurrency: three at a time, after a warm-up.
        if transport == "litellm":
            litellm = import_litellm()

            def one(r: RequestSpec) -> Awaitable[dict[str, Any]]:
                return send(litellm, ep, r)

            await one(spec("warm up"))
            return await _in_threes(one, requests)
        async with DirectClient() as client:
            await client.send(ep, spec("warm up"))
            return await _in_threes(lambda r: client.send(ep, r), requests)

    rows = asyncio.run(run())
    assert all(r["status"] == "ok" for r in rows)
    ttft = [r["ttft_s"] for r in rows]
    itl = [r["itl_s"] for r in rows]
    profile_ttft, profile_itl = STEADY.ttft_ms / 1000, STEADY.itl_ms / 1000
    # A measured TTFT can be late, never early: the request's clock starts first.
    assert min(ttft) >= profile_ttft
    # Upper bounds generous (a loaded 2-core machine): litellm's clock also holds its
    # own preparation of the request (~9 ms at one stream, more at three).
    assert statistics.median(ttft) <= profile_ttft + (0.030 if transport == "direct" else 0.100)
    assert abs(statistics.median(itl) - profile_itl) <= 0.003
    for r in rows:
        assert r["first_chunk_s"] <= r["ttft_s"] <= r["e2e_s"]


async def _in_threes(
    one: Callable[[RequestSpec], Awaitable[dict[str, Any]]], requests: list[RequestSpec]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(0, len(requests), 3):
        rows += await asyncio.gather(*(one(r) for r in requests[i : i + 3]))
    return rows


# --- errors against the simulator and a closed port -------------------------------


def test_http_500(direct_sim: SimProcess) -> None:
    (row,) = direct_rows(endpoint(direct_sim.api_base, "openai/broken"), [spec()])
    assert (row["status"], row["error_type"], row["http_status"]) == ("error", "http_500", 500)
    assert "simulated server error" in row["error_message"]
    assert row["e2e_s"] is None and row["ttft_s"] is None


def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the request: nothing listens
    (row,) = direct_rows(endpoint(f"http://127.0.0.1:{port}/v1"), [spec()])
    assert (row["status"], row["error_type"], row["http_status"]) == (
        "error",
        "connection_error",
        None,
    )


def test_timeout(direct_sim: SimProcess) -> None:
    ep = endpoint(direct_sim.api_base, "openai/slow", timeout_s=0.3)
    started = time.perf_counter()
    (row,) = direct_rows(ep, [spec()])
    assert (row["status"], row["error_type"]) == ("error", "timeout_first_token")
    assert time.perf_counter() - started < 1.5


# --- a raw HTTP server for what the simulator never sends -------------------------


def _event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _delta(content: str | None = None, finish: str | None = None, **extra: Any) -> bytes:
    delta: dict[str, Any] = dict(extra)
    if content is not None:
        delta["content"] = content
    return _event({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


USAGE = _event({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}})
ROLE = _delta("", role="assistant")
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


Scenario = Callable[[asyncio.StreamWriter], Awaitable[bool]]


async def _sse(writer: asyncio.StreamWriter, pieces: list[bytes], *, gap_s: float = 0.0) -> bool:
    """A chunked event stream, each piece in its own write (and read, given a gap)."""
    writer.write(SSE_HEAD)
    for piece in pieces:
        writer.write(_http_chunk(piece))
        await writer.drain()
        if gap_s:
            await asyncio.sleep(gap_s)
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return True  # keep the connection open for the next request


async def _awkward(writer: asyncio.StreamWriter) -> bool:
    # CRLF line endings, a comment, an event: line, a two-line data event, a
    # reasoning delta; then cut into pieces at awkward places: inside "data:",
    # between "\r" and "\n", inside the JSON, between the two "\n".
    multi = b'data: {"choices": [{"index": 0,\r\ndata: "delta": {"content": " world"}}]}\r\n\r\n'
    stream = (
        b": keep-alive comment\r\n\r\n"
        + ROLE.replace(b"\n", b"\r\n")
        + b"event: message\r\n"
        + _delta(reasoning_content="thinking").replace(b"\n", b"\r\n")
        + _delta("Hello").replace(b"\n", b"\r\n")
        + multi
        + _delta(finish="stop")
        + USAGE
        + b"data: [DONE]\n\n"
    )
    between_cr_and_lf = stream.index(b",\r\ndata:") + 2  # inside the two-line event
    cuts = [3, 30, between_cr_and_lf, 90, 91, 150, 151, 152, len(stream) - 3]
    cuts += list(range(160, len(stream) - 10, 17))
    cuts = sorted(set(cuts))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    return await _sse(writer, pieces, gap_s=0.002)


async def _utf8_split(writer: asyncio.StreamWriter) -> bool:
    # json.dumps(ensure_ascii=False): raw multi-byte UTF-8, cut inside a character.
    event = (
        b"data: "
        + json.dumps(
            {"choices": [{"delta": {"content": "d\u00e9j\u00e0 \U0001f642"}}]}, ensure_ascii=False
        ).encode()
        + b"\n\n"
    )
    cut = event.index("\U0001f642".encode()) + 2
    pieces = [ROLE, event[:cut], event[cut:], _delta(finish="stop"), b"data: [DONE]\n\n"]
    return await _sse(writer, pieces, gap_s=0.002)


async def _bad_utf8(writer: asyncio.StreamWriter) -> bool:
    return await _sse(writer, [ROLE, b'data: {"choices": [{"delta": {"content": "\xff"}}]}\n\n'])


async def _finish_without_done(writer: asyncio.StreamWriter) -> bool:
    return await _sse(writer, [ROLE, _delta("Hi"), _delta(finish="stop"), USAGE])


async def _malformed(writer: asyncio.StreamWriter) -> bool:
    bad = b'data: {"choices": [{"delta": {"content": "oops"\n\n'
    return await _sse(writer, [ROLE, _delta("Hi"), bad, b"data: [DONE]\n\n"])


async def _wrong_shape(writer: asyncio.StreamWriter) -> bool:
    return await _sse(writer, [ROLE, b"data: [1, 2, 3]\n\n", b"data: [DONE]\n\n"])


async def _error_event(writer: asyncio.StreamWriter) -> bool:
    error = _event({"error": {"message": "model overloaded", "code": 503}})
    return await _sse(writer, [ROLE, _delta("Hi"), error])


async def _cut(writer: asyncio.StreamWriter) -> bool:
    # Chunked transfer that stops mid-body: no terminating chunk, then EOF.
    writer.write(SSE_HEAD + _http_chunk(ROLE) + _http_chunk(_delta("Hel")))
    await writer.drain()
    await asyncio.sleep(0.01)
    return False


async def _eof_without_done(writer: asyncio.StreamWriter) -> bool:
    # A body delimited by the connection's end: complete at the HTTP level,
    # but the event stream never said it was finished.
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
    writer.write(ROLE + _delta("Hel") + _delta("lo"))
    await writer.drain()
    return False


async def _rate_limited(writer: asyncio.StreamWriter) -> bool:
    body = json.dumps({"error": {"message": "slow down", "type": "rate_limit"}}).encode()
    writer.write(
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    return True


SCENARIOS: dict[str, Scenario] = {
    "awkward": _awkward,
    "utf8_split": _utf8_split,
    "bad_utf8": _bad_utf8,
    "finish_without_done": _finish_without_done,
    "malformed": _malformed,
    "wrong_shape": _wrong_shape,
    "error_event": _error_event,
    "cut": _cut,
    "eof_without_done": _eof_without_done,
    "rate_limited": _rate_limited,
}


class RawServer:
    """HTTP/1.1 by hand, with keep-alive; the first path segment names the scenario."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
                request_line, *header_lines = head.split("\r\n")
                path = request_line.split(" ")[1]
                headers = {}
                for line in header_lines:
                    if line:
                        name, value = line.split(":", 1)
                        headers[name.lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((path, headers, json.loads(body)))
                if not await SCENARIOS[path.split("/")[1]](writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection
        finally:
            writer.close()


def raw_rows(
    scenario: str, count: int = 1, **endpoint_kwargs: Any
) -> tuple[list[dict[str, Any]], RawServer]:
    async def run() -> list[dict[str, Any]]:
        server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ep = endpoint(f"http://127.0.0.1:{port}/{scenario}/v1", **endpoint_kwargs)
        try:
            async with DirectClient() as client:
                return [await client.send(ep, spec()) for _ in range(count)]
        finally:
            server.close()

    raw = RawServer()
    return asyncio.run(run()), raw


def test_awkward_but_valid_stream_and_connection_reuse() -> None:
    rows, raw = raw_rows("awkward", count=3)
    for row in rows:
        assert row["status"] == "ok", row["error_message"]
        assert row["response_text"] == "Hello world"
        assert row["text_chunks"] == 2
        assert row["finish_reason"] == "stop"
        assert (row["input_tokens"], row["output_tokens"]) == (7, 2)
        assert row["first_reasoning_s"] is not None
        assert row["first_chunk_s"] < row["first_reasoning_s"] < row["ttft_s"] <= row["e2e_s"]
    # The body after [DONE] was read, so the keep-alive connection was reused.
    assert raw.connections == 1


def test_character_split_across_reads() -> None:
    (row,), _ = raw_rows("utf8_split")
    assert row["status"] == "ok" and row["response_text"] == "d\u00e9j\u00e0 \U0001f642"


def test_request_body_and_headers() -> None:
    params = {"temperature": 0, "extra_headers": {"X-Trace": "1"}, "extra_body": {"top_k": 5}}
    _, raw = raw_rows(
        "finish_without_done",
        model="hosted_vllm/meta-llama/Llama-3.1-8B-Instruct",
        params=params,
        api_key="secret-key",
    )
    ((path, headers, body),) = raw.requests
    assert path.endswith("/v1/chat/completions")
    assert headers["authorization"] == "Bearer secret-key"
    assert headers["x-trace"] == "1"
    assert body == {
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "messages": [{"role": "user", "content": PROMPTS[0]}],
        "max_tokens": 32,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0,
        "top_k": 5,
    }


def test_no_authorization_header_without_a_key() -> None:
    _, raw = raw_rows("finish_without_done", api_key=None)
    assert "authorization" not in raw.requests[0][1]


def test_finish_reason_without_done_is_a_complete_stream() -> None:
    (row,), _ = raw_rows("finish_without_done")
    assert row["status"] == "ok" and row["response_text"] == "Hi"


@pytest.mark.parametrize(
    ("scenario", "error_type", "text"),
    [
        ("malformed", "malformed_stream", "Hi"),
        ("wrong_shape", "malformed_stream", ""),
        ("bad_utf8", "malformed_stream", ""),
        ("error_event", "stream_error", "Hi"),
        ("cut", "stream_error", "Hel"),
        ("eof_without_done", "stream_error", "Hello"),
    ],
)
def test_broken_streams(scenario: str, error_type: str, text: str) -> None:
    (row,), _ = raw_rows(scenario)
    assert (row["status"], row["error_type"]) == ("error", error_type), row["error_message"]
    assert row["response_text"] == text  # what arrived before the failure is kept
    assert row["e2e_s"] is None


def test_error_event_message() -> None:
    (row,), _ = raw_rows("error_event")
    assert "model overloaded" in row["error_message"]


def test_rate_limited_keeps_the_message_and_hides_the_key() -> None:
    (row,), _ = raw_rows("rate_limited", api_key="slow down")  # the "key" appears in the body
    assert (row["error_type"], row["http_status"]) == ("rate_limited", 429)
    assert row["error_message"].startswith("HTTP 429") and "slow down" not in row["error_message"]


# --- pure helpers -----------------------------------------------------------------


def test_wire_model_and_url() -> None:
    assert wire_model("openai/gpt-4o-mini") == "gpt-4o-mini"
    assert wire_model("hosted_vllm/meta-llama/Llama-3.1-8B") == "meta-llama/Llama-3.1-8B"
    assert wire_model("gpt-4o") == "gpt-4o"
    assert chat_completions_url(endpoint("http://h:1/v1/")) == "http://h:1/v1/chat/completions"
    assert chat_completions_url(endpoint(None)).startswith("https://api.openai.com/v1/")
    with pytest.raises(ValueError, match="api_base"):
        chat_completions_url(endpoint(None, "groq/llama-3"))


def test_request_body_keeps_streaming_whatever_the_params_say() -> None:
    ep = endpoint("http://h/v1", params={"stream": False, "seed": 1})
    body = request_body(ep, spec())
    assert body["stream"] is True and body["seed"] == 1


def test_suite_extra_body_is_merged_into_the_request() -> None:
    from harness.providers.direct import request_body

    ep = endpoint("http://127.0.0.1:1/v1", "hosted_vllm/m")
    req = RequestSpec(
        suite="s",
        suite_kind="latency",
        case_id="c",
        repeat=0,
        provider="p",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=8,
        extra={"extra_body": {"ignore_eos": True}},
    )
    body = request_body(ep, req)
    assert body["ignore_eos"] is True
    assert "extra_body" not in body
