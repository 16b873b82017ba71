"""The simulator's Gemini dialect, and the native Gemini transport against it.

The dialect is checked on the wire (events, usage, error shapes, routes, write
stamps); the native client is checked against litellm on the same simulator
(same text, usage, finish reason, chunk counts) and on a capturing server (the
same URL, headers and body), against the simulator's own write stamps (its
clock), and on every fault the profile can script. A ``harness run`` with
``model: gemini/…`` and ``api_base`` at the simulator goes end to end, without
importing litellm when nothing needs it, and its key is in no file it writes.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest
from aiohttp import web

from harness.config.spec import ProviderConfig
from harness.providers.direct import DirectClient
from harness.providers.gemini import GeminiClient, request_body, stream_url, usage_counts
from harness.providers.litellm import import_litellm, send
from harness.providers.trace import Endpoint
from harness.report.fairness import fairness_note
from harness.request import RequestSpec
from harness.run.endpoints import choose_transport
from harness.sim import SimProcess, SimProfile

SECRET = "AIzaSyTest0123456789abcdefghijklmnopqrs"
QUERY_KEY = "qkey-0123456789abcdef"
CACHED = SimProfile(ttft_ms=80, itl_ms=10, output_tokens=12, seed=3, cache_read_tokens=7)
MESSAGES = [
    {"role": "system", "content": "Be brief"},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture(scope="module")
def gsim() -> Iterator[SimProcess]:
    think = {"ttft_ms": 50, "itl_ms": 5, "output_tokens": 6, "reasoning_tokens": 4, "seed": 1}
    profiles = {
        "cached": CACHED,
        # A name litellm's table knows: litellm sends the system prompt as system_instruction.
        "gemini-2.5-flash": SimProfile(ttft_ms=20, itl_ms=5, output_tokens=9, seed=5),
        "think": SimProfile(**think),
        "inclusive": SimProfile(**think, usage_reasoning=False),
        "limited": SimProfile(faults={"rate_limit": 1.0}, retry_after_s=2.5),
        "overloaded": SimProfile(faults={"server_error": 1.0}),
        "broken": SimProfile(error_rate=1.0),
        "auth": SimProfile(faults={"auth_error": 1.0}),
        "refuses": SimProfile(faults={"content_filter": 1.0}, output_tokens=8),
        "reset": SimProfile(faults={"connection_reset": 1.0}, output_tokens=8, itl_ms=1),
        "malformed": SimProfile(faults={"malformed_chunk": 1.0}, output_tokens=8, itl_ms=1),
        "unfinished": SimProfile(faults={"no_finish": 1.0}, output_tokens=4, itl_ms=1),
        "empty": SimProfile(faults={"empty": 1.0}),
        "hangs": SimProfile(faults={"hang_before_first_token": 1.0}, hang_s=5),
        "midhang": SimProfile(faults={"hang_mid_stream": 1.0}, output_tokens=8, itl_ms=1, hang_s=5),
        "scripted": SimProfile(script=["rate_limit", "server_error", "ok"], output_tokens=3),
    }
    with SimProcess(profiles) as process:
        yield process


def root(process: SimProcess) -> str:
    return process.api_base.removesuffix("/v1")


def endpoint(
    api_base: str | None, model: str = "gemini/cached", transport: str = "gemini", **kw: Any
) -> Endpoint:
    values: dict[str, Any] = {"params": {}, "timeout_s": 10.0, **kw}
    return Endpoint(
        provider="p",
        model=model,
        simulated=False,
        api_base=api_base,
        api_key=SECRET,
        transport=transport,
        **values,
    )


def spec(
    messages: list[dict[str, Any]] = MESSAGES, max_tokens: int = 32, case: str = "c0"
) -> RequestSpec:
    return RequestSpec(
        suite="s",
        suite_kind="latency",
        case_id=case,
        repeat=0,
        provider="p",
        messages=messages,
        max_tokens=max_tokens,
    )


def native(ep: Endpoint, requests: list[RequestSpec]) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        async with GeminiClient() as client:
            return [await client.send(ep, r) for r in requests]

    return asyncio.run(run())


def sse_events(text: str) -> list[dict[str, Any]]:
    """The payloads of a Gemini stream (CRLF-framed ``data:`` events)."""
    assert "\r\n\r\n" in text
    return [json.loads(block.removeprefix("data: ")) for block in text.strip().split("\r\n\r\n")]


def gen_body(model_max: int = 3, **extra: Any) -> dict[str, Any]:
    return {
        "contents": [{"role": "user", "parts": [{"text": "What is the capital of France?"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief"}]},
        "generationConfig": {"maxOutputTokens": model_max},
        **extra,
    }


# --- the dialect on the wire ------------------------------------------------------


def test_stream_events_usage_and_stamps(gsim: SimProcess) -> None:
    # Every prefix litellm may build: {api_base}/models/… for a base ending in /v1
    # (the simulator's), at the root, and Google's own /v1beta and /v1alpha.
    for prefix in ("/v1", "", "/v1beta", "/v1alpha"):
        url = f"{root(gsim)}{prefix}/models/cached:streamGenerateContent?alt=sse"
        response = httpx.post(url, json=gen_body(), headers={"x-sim-user": "wire-1"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.text)
        texts = [e["candidates"][0]["content"]["parts"][0]["text"] for e in events]
        assert len(texts) == 3 and not any(" " in t.strip() for t in texts)
        assert [e["candidates"][0].get("finishReason") for e in events] == [
            None,
            None,
            "MAX_TOKENS",
        ]
        # "Be brief" + "What is the capital of France?": 2 + 6 = 8 words, plus the
        # profile's 7 cached tokens, which Gemini counts inside the prompt: 15.
        # max 3 < the profile's 12 words: 3 candidates; total 15 + 3 = 18.
        assert events[-1]["usageMetadata"] == {
            "promptTokenCount": 15,
            "candidatesTokenCount": 3,
            "cachedContentTokenCount": 7,
            "totalTokenCount": 18,
        }
        assert events[0]["usageMetadata"]["candidatesTokenCount"] == 1  # counted so far
        assert events[0]["modelVersion"] == "cached"
    stamps = httpx.get(root(gsim) + "/sim/timings").json()["wire-1"]
    # TTFT 80 ms, then 2 gaps of 10 ms to the third (last) word: due at 100 ms.
    assert stamps["first_sent"] - stamps["received"] >= 0.080
    assert stamps["last_sent"] - stamps["received"] >= 0.100


def test_litellm_spellings_are_accepted(gsim: SimProcess) -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"text": "a b c"}]}],
        "system_instruction": {"parts": [{"text": "d"}]},
        "generationConfig": {"max_output_tokens": 2},
    }
    url = root(gsim) + "/v1/models/cached:streamGenerateContent?alt=sse"
    events = sse_events(httpx.post(url, json=body).text)
    # 4 prompt words + 7 cached; 2 words of answer (max_output_tokens 2).
    assert events[-1]["usageMetadata"]["promptTokenCount"] == 11
    assert events[-1]["usageMetadata"]["candidatesTokenCount"] == 2


def test_thought_parts_come_first(gsim: SimProcess) -> None:
    url = root(gsim) + "/v1/models/think:streamGenerateContent?alt=sse"
    body = gen_body(2)
    events = sse_events(httpx.post(url, json=body).text)
    parts = [e["candidates"][0]["content"]["parts"][0] for e in events]
    assert [p.get("thought", False) for p in parts] == [True] * 4 + [False] * 2
    # 4 thoughts apart from the 2 candidates; total 8 prompt words + 4 + 2 = 14.
    assert events[-1]["usageMetadata"] == {
        "promptTokenCount": 8,
        "candidatesTokenCount": 2,
        "thoughtsTokenCount": 4,
        "totalTokenCount": 14,
    }
    # usage_reasoning off: the thoughts are inside candidatesTokenCount, and not reported.
    url = root(gsim) + "/v1/models/inclusive:streamGenerateContent?alt=sse"
    usage = sse_events(httpx.post(url, json=body).text)[-1]["usageMetadata"]
    assert usage == {"promptTokenCount": 8, "candidatesTokenCount": 6, "totalTokenCount": 14}
    whole = httpx.post(root(gsim) + "/v1/models/think:generateContent", json=body).json()
    candidate = whole["candidates"][0]
    assert [p.get("thought", False) for p in candidate["content"]["parts"]] == [True, False]
    assert candidate["finishReason"] == "MAX_TOKENS"
    assert whole["usageMetadata"]["thoughtsTokenCount"] == 4


@pytest.mark.parametrize(
    ("model", "status", "kind"),
    [
        ("limited", 429, "RESOURCE_EXHAUSTED"),
        ("overloaded", 503, "UNAVAILABLE"),
        ("broken", 500, "INTERNAL"),
        ("auth", 401, "UNAUTHENTICATED"),
    ],
)
def test_errors_in_google_shape(gsim: SimProcess, model: str, status: int, kind: str) -> None:
    url = f"{root(gsim)}/v1/models/{model}:streamGenerateContent?alt=sse"
    response = httpx.post(url, json=gen_body(), headers={"x-goog-api-key": "k"})
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (status, kind)
    assert isinstance(error["message"], str)
    if status == 429:
        assert response.headers["retry-after"] == "2.5"
        assert error["details"][0]["retryDelay"] == "2.5s"


def test_bad_requests_are_400s(gsim: SimProcess) -> None:
    base = root(gsim) + "/v1/models/cached:streamGenerateContent"
    no_contents = httpx.post(base + "?alt=sse", json={"generationConfig": {}})
    assert no_contents.status_code == 400
    assert no_contents.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert httpx.post(base, json=gen_body()).status_code == 400  # no alt=sse


# --- the native client against litellm ---------------------------------------------


COMPARED = (
    "status",
    "response_text",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "visible_tokens",
    "finish_reason",
    "text_chunks",
    "reasoning_chunks",
    "tokens_mismatch",
)


def test_native_and_litellm_record_the_same_responses(gsim: SimProcess) -> None:
    other = [{"role": "user", "content": "Name three primary colours, please."}]
    cases = [
        ("gemini/cached", spec()),
        ("gemini/cached", spec(max_tokens=5, case="short")),
        ("gemini/cached", spec(other, case="other")),
        ("gemini/think", spec(case="think")),
        ("gemini/inclusive", spec(case="inclusive")),
        ("gemini/gemini-2.5-flash", spec(case="known")),
    ]

    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        litellm = import_litellm()
        await send(litellm, endpoint(gsim.api_base, transport="litellm"), spec(case="warm"))
        slow = [
            await send(litellm, endpoint(gsim.api_base, m, transport="litellm"), r)
            for m, r in cases
        ]
        async with GeminiClient() as client:
            fast = [await client.send(endpoint(gsim.api_base, m), r) for m, r in cases]
        return slow, fast

    slow, fast = asyncio.run(run())
    for a, b in zip(slow, fast, strict=True):
        assert a["status"] == "ok", a["error_message"]
        assert (a["transport"], b["transport"]) == ("litellm", "gemini")
        assert {k: a[k] for k in COMPARED} == {k: b[k] for k in COMPARED}
    # By hand: 8 prompt words + 7 cached tokens = 15 input tokens, 7 of them cached.
    assert (fast[0]["input_tokens"], fast[0]["cached_input_tokens"]) == (15, 7)
    assert fast[0]["cache_write_tokens"] is None  # Gemini reports no cache writes
    assert (fast[0]["output_tokens"], fast[0]["finish_reason"]) == (12, "stop")
    assert (fast[1]["output_tokens"], fast[1]["finish_reason"]) == (5, "length")
    # 4 thoughts + 6 candidates: litellm adds the thoughts to the output (total 8 + 4 + 6
    # = 18 is not prompt + candidates = 14), and so does the native client.
    assert (fast[3]["output_tokens"], fast[3]["reasoning_tokens"]) == (10, 4)
    assert (fast[3]["visible_tokens"], fast[3]["reasoning_chunks"]) == (6, 4)
    # Thoughts inside candidatesTokenCount (8 + 10 = 18 = total): not added twice.
    assert (fast[4]["output_tokens"], fast[4]["reasoning_tokens"]) == (10, None)
    # The known model: 2 + 6 prompt words, no cache; 9 words of answer.
    assert (fast[5]["input_tokens"], fast[5]["output_tokens"]) == (8, 9)


class Capture:
    """A loopback server that records each request and answers one short Gemini stream."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            {
                "path": request.path,
                "query": request.query_string,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": await request.json(),
            }
        )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        event = {
            "candidates": [
                {"content": {"parts": [{"text": "ok"}], "role": "model"}, "finishReason": "STOP"}
            ],
            "usageMetadata": {
                "promptTokenCount": 3,
                "candidatesTokenCount": 1,
                "totalTokenCount": 4,
            },
        }
        await response.write(b"data: " + json.dumps(event).encode() + b"\r\n\r\n")
        await response.write_eof()
        return response


def test_the_same_request_as_litellm_on_the_wire() -> None:
    turns = [
        {"role": "system", "content": "Be brief"},
        {"role": "system", "content": [{"type": "text", "text": "two"}]},
        {"role": "user", "content": "hi"},
        {"role": "user", "content": [{"type": "text", "text": "and"}]},
        {"role": "assistant", "content": "yo"},
        {"role": "user", "content": [{"type": "text", "text": "more"}]},
    ]
    params = {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 5,
        "stop": "END",
        "user": "u1",
        "metadata": {"a": 1},
        "extra_headers": {"X-Trace": "t1"},
        "extra_body": {"generationConfig": {"thinkingConfig": {"thinkingBudget": 5}}},
    }
    cases = [
        ("gemini/gemini-2.5-flash", "/v1", params),  # a known model: system_instruction
        ("gemini/cached", "", {}),  # unknown to litellm: the system prompt joins the user turn
        ("gemini/gemma-3-27b-it", "/v1beta/", {"stop": ["a", "b"]}),  # no system messages
    ]

    async def run() -> list[dict[str, Any]]:
        capture = Capture()
        app = web.Application()
        app.router.add_post("/{tail:.*}", capture.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        litellm = import_litellm()
        try:
            async with GeminiClient() as client:
                for model, suffix, extra in cases:
                    base = f"http://127.0.0.1:{port}{suffix}"
                    ep = endpoint(base, model, params=extra)
                    a = await send(
                        litellm, endpoint(base, model, "litellm", params=extra), spec(turns)
                    )
                    b = await client.send(ep, spec(turns))
                    assert a["status"] == b["status"] == "ok", (
                        a["error_message"],
                        b["error_message"],
                    )
        finally:
            await runner.cleanup()
        return capture.seen

    seen = asyncio.run(run())
    assert len(seen) == 2 * len(cases)
    for a, b in zip(seen[::2], seen[1::2], strict=True):
        assert (a["path"], a["query"]) == (b["path"], b["query"])
        assert a["body"] == b["body"]
        assert a["headers"]["x-goog-api-key"] == b["headers"]["x-goog-api-key"] == SECRET
    known, unknown, gemma = seen[1], seen[3], seen[5]
    assert known["path"] == "/v1/models/gemini-2.5-flash:streamGenerateContent"
    assert known["query"] == "alt=sse" and known["headers"]["x-trace"] == "t1"
    assert known["body"] == {
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}, {"text": "and"}]},
            {"role": "model", "parts": [{"text": "yo"}]},
            {"role": "user", "parts": [{"text": "more"}]},
        ],
        "system_instruction": {"parts": [{"text": "Be brief"}, {"text": "two"}]},
        "generationConfig": {
            "temperature": 0.2,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "max_output_tokens": 32,
            "top_k": 5,
            "thinkingConfig": {"thinkingBudget": 5},
        },
    }
    assert unknown["path"] == "/models/cached:streamGenerateContent"
    assert unknown["body"]["contents"][0]["parts"][:3] == [
        {"text": "Be brief"},
        {"text": "two"},
        {"text": "hi"},
    ]
    assert "system_instruction" not in unknown["body"]
    assert gemma["path"] == "/v1beta/models/gemma-3-27b-it:streamGenerateContent"
    assert gemma["body"]["generationConfig"]["stop_sequences"] == ["a", "b"]


def test_urls_without_an_api_base_are_litellms() -> None:
    from litellm.llms.vertex_ai.common_utils import get_gemini_url

    import_litellm()
    names = [
        "gemini-2.5-flash",
        "gemini-2.0-flash-lite",
        "gemini-1.5-pro",
        "gemini-3-pro-preview",
        "gemini-flash-latest",
        "gemini-flash-lite-latest",
        "gemini-pro",
        "gemma-3-27b-it",
        "cached",
    ]
    for name in names:
        expected, _ = get_gemini_url(mode="chat", model=name, stream=True)
        assert stream_url(endpoint(None, f"gemini/{name}")) == expected, name
    # By hand, the two API versions litellm picks between:
    assert stream_url(endpoint(None, "gemini/gemini-2.5-flash")) == (
        "https://generativelanguage.googleapis.com/v1beta/models/"
        "gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert "/v1alpha/models/gemini-3-pro-preview:" in stream_url(
        endpoint(None, "gemini/gemini-3-pro-preview")
    )
    # A query the base carries stays ahead of alt=sse (litellm would cut the path there).
    assert stream_url(endpoint("http://h:1/v1beta/?key=abc", "gemini/m")) == (
        "http://h:1/v1beta/models/m:streamGenerateContent?key=abc&alt=sse"
    )


def test_system_instruction_support_is_litellms() -> None:
    from litellm.llms.vertex_ai.common_utils import get_supports_system_message

    import_litellm()
    for name in ("gemini-2.5-flash", "gemini-2.0-flash", "gemma-3-27b-it", "cached", "gemini-pro"):
        body = request_body(endpoint(None, f"gemini/{name}"), spec())
        assert ("system_instruction" in body) == get_supports_system_message(name, "gemini"), name


def test_same_words_as_the_openai_dialect(gsim: SimProcess) -> None:
    (gemini_row,) = native(endpoint(gsim.api_base), [spec()])

    async def openai_row() -> dict[str, Any]:
        async with DirectClient() as client:
            ep = endpoint(gsim.api_base, "openai/cached", transport="direct")
            return await client.send(ep, spec())

    assert gemini_row["response_text"] == asyncio.run(openai_row())["response_text"]


def test_native_clock_against_the_simulator_stamps(gsim: SimProcess) -> None:
    async def run() -> list[tuple[dict[str, Any], dict[str, float]]]:
        out = []
        async with GeminiClient() as client, httpx.AsyncClient() as h:
            for i in range(6):
                tagged = endpoint(
                    gsim.api_base, params={"extra_headers": {"x-sim-user": f"clock-{i}"}}
                )
                row = await client.send(tagged, spec(case=f"c{i}"))
                stamps = (await h.get(root(gsim) + "/sim/timings")).json()[f"clock-{i}"]
                out.append((row, stamps))
        return out

    late = []
    for row, stamps in asyncio.run(run()):
        assert row["status"] == "ok", row["error_message"]
        written = stamps["first_sent"] - row["t0_perf_s"]
        # The client sees the first text after the server wrote it, never before;
        # and the server wrote it at least the profile's 80 ms after the request arrived.
        assert row["ttft_s"] >= written >= 0.080
        late.append(row["ttft_s"] - written)
        # The last text: due 80 + 11 x 10 = 190 ms after arrival; seen after its write
        # (1e-6: the float sum of the schedule's offsets).
        last_written = stamps["last_sent"] - row["t0_perf_s"]
        assert row["chunk_offsets_s"][-1] >= last_written >= 0.190 - 1e-6
    late.sort()
    assert late[len(late) // 2] < 0.010  # generous: a loaded 2-core machine


# --- the native client's errors ---------------------------------------------------


def test_rate_limit_keeps_retry_after(gsim: SimProcess) -> None:
    (row,) = native(endpoint(gsim.api_base, "gemini/limited"), [spec()])
    assert (row["error_type"], row["http_status"], row["retry_after_s"]) == (
        "rate_limited",
        429,
        2.5,
    )
    assert "Resource has been exhausted" in row["error_message"]


@pytest.mark.parametrize(
    ("model", "error_type", "status"),
    [("gemini/overloaded", "http_503", 503), ("gemini/broken", "http_500", 500)],
)
def test_server_errors_keep_their_status(
    gsim: SimProcess, model: str, error_type: str, status: int
) -> None:
    (row,) = native(endpoint(gsim.api_base, model), [spec()])
    assert (row["status"], row["error_type"], row["http_status"]) == ("error", error_type, status)
    assert row["ttft_s"] is None and row["e2e_s"] is None


def test_auth_error_hides_the_key_in_header_and_query(gsim: SimProcess) -> None:
    # The key in the header, and another in the base's query string (?key=…):
    # the simulator echoes both.
    ep = endpoint(gsim.api_base + "?key=" + QUERY_KEY, "gemini/auth")
    assert QUERY_KEY in stream_url(ep)
    (row,) = native(ep, [spec()])
    assert (row["error_type"], row["http_status"]) == ("http_401", 401)
    assert "x-goog-api-key" in row["error_message"] and "query" in row["error_message"]
    dumped = json.dumps(row, default=str)
    assert SECRET not in dumped and QUERY_KEY not in dumped


def test_a_key_in_the_url_is_scrubbed_from_connection_errors() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused.
    ep = endpoint("http://127.0.0.1:9/v1?key=" + QUERY_KEY)
    (row,) = native(ep, [spec()])
    assert row["error_type"] == "connection_error"
    assert QUERY_KEY not in json.dumps(row, default=str)


@pytest.mark.parametrize(
    ("model", "error_type"),
    [
        ("gemini/refuses", "content_filtered"),
        ("gemini/reset", "stream_error"),
        ("gemini/malformed", "malformed_stream"),
        ("gemini/unfinished", "stream_error"),
        ("gemini/empty", "empty_response"),
    ],
)
def test_broken_streams(gsim: SimProcess, model: str, error_type: str) -> None:
    (row,) = native(endpoint(gsim.api_base, model), [spec()])
    assert (row["status"], row["error_type"]) == ("error", error_type), row["error_message"]
    if model == "gemini/refuses":  # SAFETY after 2 words
        assert row["finish_reason"] == "content_filter" and row["text_chunks"] == 2


def test_first_token_timeout(gsim: SimProcess) -> None:
    ep = endpoint(gsim.api_base, "gemini/hangs", first_token_timeout_s=0.3)
    (row,) = native(ep, [spec()])
    assert row["error_type"] == "timeout_first_token"


def test_a_hang_mid_stream_times_out_after_half_the_text(gsim: SimProcess) -> None:
    (row,) = native(endpoint(gsim.api_base, "gemini/midhang", timeout_s=0.5), [spec()])
    # 8 one-word events, the hang before the fifth (8 // 2 = 4 delivered).
    assert (row["error_type"], row["text_chunks"]) == ("timeout_mid_stream", 4)


def test_a_scripted_profile_plays_in_order(gsim: SimProcess) -> None:
    rows = native(
        endpoint(gsim.api_base, "gemini/scripted"), [spec(case=f"s{i}") for i in range(3)]
    )
    assert [r["error_type"] for r in rows] == ["rate_limited", "http_503", None]
    assert rows[2]["output_tokens"] == 3


def test_untranslated_params_are_refused_unsent(gsim: SimProcess) -> None:
    before = httpx.get(root(gsim) + "/sim/stats").json()["requests"]
    (row,) = native(endpoint(gsim.api_base, params={"tools": [{"type": "function"}]}), [spec()])
    assert row["error_type"] == "unsupported_request" and "tools" in row["error_message"]
    # litellm's table says gemini-3.6-flash ignores sampling params (litellm refuses them).
    ep = endpoint(gsim.api_base, "gemini/gemini-3.6-flash", params={"temperature": 0})
    (row,) = native(ep, [spec()])
    assert row["error_type"] == "unsupported_request"
    assert httpx.get(root(gsim) + "/sim/stats").json()["requests"] == before


def test_usage_counts_by_hand() -> None:
    # Thoughts apart: 100 prompt (30 cached) + 20 candidates + 50 thoughts = 170 total.
    assert usage_counts(
        {
            "promptTokenCount": 100,
            "cachedContentTokenCount": 30,
            "candidatesTokenCount": 20,
            "thoughtsTokenCount": 50,
            "totalTokenCount": 170,
        }
    ) == {
        "input_tokens": 100,
        "output_tokens": 70,
        "cached_input_tokens": 30,
        "cache_write_tokens": None,
        "reasoning_tokens": 50,
    }
    # Thoughts inside candidates: 100 + 70 = 170 = total, so 70 output, not 120.
    inside = {"promptTokenCount": 100, "candidatesTokenCount": 70, "thoughtsTokenCount": 50}
    assert usage_counts({**inside, "totalTokenCount": 170})["output_tokens"] == 70
    assert usage_counts(None) == {}


def test_auto_picks_the_native_client_for_gemini_models() -> None:
    def pick(**kw: Any) -> str:
        return choose_transport(ProviderConfig(name="p", **kw))

    assert pick(model="gemini/gemini-2.5-flash") == "gemini"
    assert pick(model="gemini/gemini-2.5-flash", api_base="http://h:1") == "gemini"
    assert pick(model="gemini/gemini-2.5-flash", params={"temperature": 0.5}) == "gemini"
    assert pick(model="gemini/gemini-2.5-flash", transport="litellm") == "litellm"
    assert pick(model="gemini/x", params={"tools": []}) == "litellm"
    assert pick(model="gemini/gemini-3.6-flash", params={"top_k": 3}) == "litellm"
    assert pick(model="vertex_ai/gemini-2.5-flash") == "litellm"


def test_gemini_is_a_lean_path() -> None:
    rows = pd.DataFrame({"provider": ["a", "b"], "transport": ["gemini", "direct"]})
    assert fairness_note(rows) is None
    rows = pd.DataFrame({"provider": ["a", "b"], "transport": ["gemini", "litellm"]})
    note = fairness_note(rows)
    assert note is not None and "a by gemini (p50" in note


# --- end to end ---------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["auto", "litellm"])
def test_harness_run_end_to_end(
    gsim: SimProcess, write_config: Callable[..., Path], tmp_path: Path, transport: str
) -> None:
    config = write_config(
        f"""
        run: {{name: gemini-e2e, concurrency: 2}}
        providers:
          - name: gemini-sim
            model: gemini/cached
            api_base: {gsim.api_base}
            api_key_env: GEMINI_TEST_KEY
            transport: {transport}
            max_retries: 0
        suites:
          - name: hello
            kind: latency
            prompts: ["What is the capital of France?"]
            max_tokens: 32
            requests: 3
        """
    )
    out = tmp_path / "out"
    code = (
        "import sys\n"
        "from harness.cli import main\n"
        "try:\n"
        f"    main(['run', {str(config)!r}, '--out', {str(out)!r},"
        " '--run-id', 'r1', '--no-progress'])\n"
        "except SystemExit as e:\n    status = e.code\n"
        "print('LITELLM_IMPORTED' if 'litellm' in sys.modules else 'NO_LITELLM')\n"
        "sys.exit(status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GEMINI_TEST_KEY": SECRET},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = "NO_LITELLM" if transport == "auto" else "LITELLM_IMPORTED"
    assert expected in result.stdout
    rows = pq.read_table(out / "r1").to_pylist()
    measured = [r for r in rows if not r["warmup"]]
    assert len(measured) == 3
    for row in measured:
        assert row["status"] == "ok", row["error_message"]
        assert row["transport"] == ("gemini" if transport == "auto" else "litellm")
        # 6 prompt words + 7 cached tokens (inside the prompt); 12 words of answer.
        assert (row["input_tokens"], row["output_tokens"]) == (13, 12)
        assert row["cached_input_tokens"] == 7
        assert row["finish_reason"] == "stop"
        assert len(row["response_text"].split()) == 12
    # The key is in no file the run wrote (rows, manifest, logs), nor in its output.
    written = [p for p in out.rglob("*") if p.is_file()]
    assert written
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in result.stdout + result.stderr
