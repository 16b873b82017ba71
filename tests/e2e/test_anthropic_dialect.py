"""The simulator's Anthropic Messages dialect, and the native Anthropic transport against it.

The dialect is checked on the wire (event order, usage, error shapes, write
stamps); the native client is checked against litellm on the same simulator
(same text, usage, finish reason, chunk counts), against the simulator's own
write stamps (its clock), and on every fault the profile can script. A
``harness run`` with ``model: anthropic/…`` and ``api_base`` at the simulator
goes end to end, without importing litellm when nothing needs it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from harness.config.spec import ProviderConfig
from harness.providers.anthropic import AnthropicClient, messages_url, request_body
from harness.providers.direct import DirectClient
from harness.providers.litellm import import_litellm, send
from harness.providers.trace import Endpoint
from harness.request import RequestSpec
from harness.run.endpoints import choose_transport
from harness.sim import SimProcess, SimProfile

SECRET = "sk-ant-test-0123456789abcdefghij"
CACHED = SimProfile(
    ttft_ms=80, itl_ms=10, output_tokens=12, seed=3, cache_read_tokens=7, cache_write_tokens=3
)
MESSAGES = [
    {"role": "system", "content": "Be brief"},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture(scope="module")
def asim() -> Iterator[SimProcess]:
    profiles = {
        "cached": CACHED,
        "think": SimProfile(ttft_ms=50, itl_ms=5, output_tokens=6, reasoning_tokens=4, seed=1),
        "limited": SimProfile(faults={"rate_limit": 1.0}, retry_after_s=2.5),
        "overloaded": SimProfile(faults={"server_error": 1.0}),
        "broken": SimProfile(error_rate=1.0),
        "auth": SimProfile(faults={"auth_error": 1.0}),
        "refuses": SimProfile(faults={"content_filter": 1.0}, output_tokens=8),
        "reset": SimProfile(faults={"connection_reset": 1.0}, output_tokens=8, itl_ms=1),
        "malformed": SimProfile(faults={"malformed_chunk": 1.0}, output_tokens=8, itl_ms=1),
        "unfinished": SimProfile(faults={"no_finish": 1.0}, output_tokens=4, itl_ms=1),
        "hangs": SimProfile(faults={"hang_before_first_token": 1.0}, hang_s=5),
    }
    with SimProcess(profiles) as process:
        yield process


def root(process: SimProcess) -> str:
    return process.api_base.removesuffix("/v1")


def endpoint(
    api_base: str, model: str = "anthropic/cached", transport: str = "anthropic", **kw: Any
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
        async with AnthropicClient() as client:
            return [await client.send(ep, r) for r in requests]

    return asyncio.run(run())


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, payload) of each event of an Anthropic stream."""
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        payload = json.loads(lines["data"])
        assert lines["event"] == payload["type"]  # the name repeats the payload's type
        out.append((lines["event"], payload))
    return out


# --- the dialect on the wire ------------------------------------------------------


def test_stream_events_usage_and_stamps(asim: SimProcess) -> None:
    body = {
        "model": "cached",
        "system": "Be brief",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 3,
        "stream": True,
        "metadata": {"user_id": "wire-1"},
    }
    # Both routes: litellm appends /v1/messages to an api_base ending in /v1.
    for path in ("/v1/messages", "/v1/v1/messages"):
        response = httpx.post(root(asim) + path, json=body)
        assert response.status_code == 200
        events = sse_events(response.text)
        names = [name for name, _ in events]
        assert names == [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        usage = events[0][1]["message"]["usage"]
        # "Be brief" + "What is the capital of France?": 2 + 6 = 8 words; cache from the profile.
        assert usage == {
            "input_tokens": 8,
            "cache_creation_input_tokens": 3,
            "cache_read_input_tokens": 7,
            "output_tokens": 1,
        }
        assert events[1][1]["content_block"] == {"type": "text", "text": ""}
        assert all(
            p["delta"]["type"] == "text_delta" for n, p in events if n == "content_block_delta"
        )
        # max_tokens 3 < the profile's 12 words: cut.
        assert events[-2][1]["delta"]["stop_reason"] == "max_tokens"
        assert events[-2][1]["usage"] == {"output_tokens": 3}
    stamps = httpx.get(root(asim) + "/sim/timings").json()["wire-1"]
    # TTFT 80 ms, then 2 gaps of 10 ms to the third (last) word: due at 100 ms.
    assert stamps["first_sent"] - stamps["received"] >= 0.080
    assert stamps["last_sent"] - stamps["received"] >= 0.100


def test_thinking_block_comes_first(asim: SimProcess) -> None:
    body = {"model": "think", "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 2}
    events = sse_events(httpx.post(root(asim) + "/v1/messages", json={**body, "stream": True}).text)
    blocks = [
        (p["index"], p["content_block"]["type"]) for n, p in events if n == "content_block_start"
    ]
    assert blocks == [(0, "thinking"), (1, "text")]
    deltas = [p["delta"]["type"] for n, p in events if n == "content_block_delta"]
    # 4 reasoning words, the signature, then max_tokens 2 words of text.
    assert deltas == ["thinking_delta"] * 4 + ["signature_delta"] + ["text_delta"] * 2
    # 4 reasoning + 2 text tokens are output.
    assert events[-2][1]["usage"] == {"output_tokens": 6}
    whole = httpx.post(root(asim) + "/v1/messages", json=body).json()
    assert [b["type"] for b in whole["content"]] == ["thinking", "text"]
    assert whole["stop_reason"] == "max_tokens" and whole["usage"]["output_tokens"] == 6


@pytest.mark.parametrize(
    ("model", "status", "kind"),
    [
        ("limited", 429, "rate_limit_error"),
        ("overloaded", 529, "overloaded_error"),
        ("broken", 500, "api_error"),
        ("auth", 401, "authentication_error"),
    ],
)
def test_errors_in_anthropic_shape(asim: SimProcess, model: str, status: int, kind: str) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    response = httpx.post(root(asim) + "/v1/messages", json=body, headers={"x-api-key": "k"})
    assert response.status_code == status
    payload = response.json()
    assert payload["type"] == "error" and payload["error"]["type"] == kind
    assert isinstance(payload["error"]["message"], str)
    if status == 429:
        assert response.headers["retry-after"] == "2.5"


def test_missing_max_tokens_is_a_400(asim: SimProcess) -> None:
    body = {"model": "cached", "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(root(asim) + "/v1/messages", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


# --- the native client against litellm ---------------------------------------------


COMPARED = (
    "status",
    "response_text",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "visible_tokens",
    "finish_reason",
    "text_chunks",
    "reasoning_chunks",
    "tokens_mismatch",
)


def test_native_and_litellm_record_the_same_responses(asim: SimProcess) -> None:
    other = [{"role": "user", "content": "Name three primary colours, please."}]
    cases = [
        ("anthropic/cached", spec()),
        ("anthropic/cached", spec(max_tokens=5, case="short")),
        ("anthropic/cached", spec(other, case="other")),
        ("anthropic/think", spec(case="think")),
    ]

    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        litellm = import_litellm()
        await send(litellm, endpoint(asim.api_base, transport="litellm"), spec(case="warm"))
        slow = [
            await send(litellm, endpoint(asim.api_base, m, transport="litellm"), r)
            for m, r in cases
        ]
        async with AnthropicClient() as client:
            fast = [await client.send(endpoint(asim.api_base, m), r) for m, r in cases]
        return slow, fast

    slow, fast = asyncio.run(run())
    for a, b in zip(slow, fast, strict=True):
        assert a["status"] == "ok", a["error_message"]
        assert (a["transport"], b["transport"]) == ("litellm", "anthropic")
        assert {k: a[k] for k in COMPARED} == {k: b[k] for k in COMPARED}
    # By hand: 8 prompt words + 7 cache reads + 3 cache writes = 18 input tokens.
    assert (fast[0]["input_tokens"], fast[0]["cached_input_tokens"]) == (18, 7)
    assert fast[0]["cache_write_tokens"] == 3
    assert (fast[0]["output_tokens"], fast[0]["finish_reason"]) == (12, "stop")
    assert (fast[1]["output_tokens"], fast[1]["finish_reason"]) == (5, "length")
    # 4 reasoning + 6 text tokens; Anthropic reports no reasoning count, litellm makes one.
    assert (fast[3]["output_tokens"], fast[3]["visible_tokens"]) == (10, 6)
    assert fast[3]["reasoning_tokens"] is None and slow[3]["reasoning_tokens"] == 4


def test_same_words_as_the_openai_dialect(asim: SimProcess) -> None:
    (anthropic_row,) = native(endpoint(asim.api_base), [spec()])

    async def openai_row() -> dict[str, Any]:
        async with DirectClient() as client:
            ep = endpoint(asim.api_base, "openai/cached", transport="direct")
            return await client.send(ep, spec())

    assert anthropic_row["response_text"] == asyncio.run(openai_row())["response_text"]


def test_native_clock_against_the_simulator_stamps(asim: SimProcess) -> None:
    ep = endpoint(asim.api_base, params={"user": "x"})
    requests = [spec(case=f"c{i}") for i in range(6)]

    async def run() -> list[tuple[dict[str, Any], dict[str, float]]]:
        out = []
        async with AnthropicClient() as client:
            for i, r in enumerate(requests):
                tagged = endpoint(asim.api_base, params={"user": f"clock-{i}"})
                row = await client.send(tagged, r)
                async with httpx.AsyncClient() as h:
                    stamps = (await h.get(root(asim) + "/sim/timings")).json()[f"clock-{i}"]
                out.append((row, stamps))
        return out

    assert request_body(ep, spec())["metadata"] == {"user_id": "x"}
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


def test_rate_limit_keeps_retry_after(asim: SimProcess) -> None:
    (row,) = native(endpoint(asim.api_base, "anthropic/limited"), [spec()])
    assert (row["error_type"], row["http_status"], row["retry_after_s"]) == (
        "rate_limited",
        429,
        2.5,
    )
    assert "simulated rate limit" in row["error_message"]


def test_litellm_keeps_retry_after_too(asim: SimProcess) -> None:
    ep = endpoint(asim.api_base, "anthropic/limited", transport="litellm")
    row = asyncio.run(send(import_litellm(), ep, spec()))
    assert (row["error_type"], row["retry_after_s"]) == ("rate_limited", 2.5)


@pytest.mark.parametrize(
    ("model", "error_type", "status"),
    [("anthropic/overloaded", "http_529", 529), ("anthropic/broken", "http_500", 500)],
)
def test_server_errors_keep_their_status(
    asim: SimProcess, model: str, error_type: str, status: int
) -> None:
    (row,) = native(endpoint(asim.api_base, model), [spec()])
    assert (row["status"], row["error_type"], row["http_status"]) == ("error", error_type, status)
    assert row["ttft_s"] is None and row["e2e_s"] is None


def test_auth_error_hides_the_key(asim: SimProcess) -> None:
    (row,) = native(endpoint(asim.api_base, "anthropic/auth"), [spec()])
    assert (row["error_type"], row["http_status"]) == ("http_401", 401)
    assert "x-api-key" in row["error_message"]  # the echo arrived ...
    assert SECRET not in json.dumps(row, default=str)  # ... without the key


@pytest.mark.parametrize(
    ("model", "error_type"),
    [
        ("anthropic/refuses", "content_filtered"),
        ("anthropic/reset", "stream_error"),
        ("anthropic/malformed", "malformed_stream"),
        ("anthropic/unfinished", "stream_error"),
    ],
)
def test_broken_streams(asim: SimProcess, model: str, error_type: str) -> None:
    (row,) = native(endpoint(asim.api_base, model), [spec()])
    assert (row["status"], row["error_type"]) == ("error", error_type), row["error_message"]
    if model == "anthropic/refuses":
        assert row["finish_reason"] == "content_filter" and row["text_chunks"] == 2


def test_first_token_timeout(asim: SimProcess) -> None:
    ep = endpoint(asim.api_base, "anthropic/hangs", first_token_timeout_s=0.3)
    (row,) = native(ep, [spec()])
    assert row["error_type"] == "timeout_first_token"


def test_untranslated_params_are_refused_unsent(asim: SimProcess) -> None:
    before = httpx.get(root(asim) + "/sim/stats").json()["requests"]
    ep = endpoint(asim.api_base, params={"tools": [{"type": "function"}]})
    (row,) = native(ep, [spec()])
    assert row["error_type"] == "unsupported_request" and "tools" in row["error_message"]
    assert httpx.get(root(asim) + "/sim/stats").json()["requests"] == before


def test_request_translation() -> None:
    ep = endpoint("https://example.test", params={"stop": "END", "temperature": 0, "top_k": 5})
    messages = [
        {"role": "system", "content": "one"},
        {"role": "system", "content": [{"type": "text", "text": "two"}]},
        {"role": "user", "content": "hi"},
    ]
    body = request_body(ep, spec(messages, max_tokens=9))
    assert body == {
        "model": "cached",
        "messages": [{"role": "user", "content": "hi"}],
        "system": "one\ntwo",
        "max_tokens": 9,
        "temperature": 0,
        "top_k": 5,
        "stop_sequences": ["END"],
        "stream": True,
    }
    assert messages_url(ep) == "https://example.test/v1/messages"
    assert messages_url(endpoint("http://h:1/v1/messages/")) == "http://h:1/v1/messages"
    assert messages_url(endpoint("http://h:1/v1")) == "http://h:1/v1/v1/messages"  # as litellm


def test_auto_picks_the_native_client_for_anthropic_models() -> None:
    def pick(**kw: Any) -> str:
        return choose_transport(ProviderConfig(name="p", **kw))

    assert pick(model="anthropic/claude-sonnet-4-5") == "anthropic"
    assert pick(model="anthropic/claude-sonnet-4-5", api_base="http://h:1") == "anthropic"
    assert pick(model="anthropic/claude-sonnet-4-5", transport="litellm") == "litellm"
    # Params the native client does not translate stay with litellm.
    assert pick(model="anthropic/x", params={"tools": []}) == "litellm"
    assert pick(model="bedrock/anthropic.claude-3") == "litellm"


# --- end to end ---------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["auto", "litellm"])
def test_harness_run_end_to_end(
    asim: SimProcess, write_config: Callable[..., Path], tmp_path: Path, transport: str
) -> None:
    config = write_config(
        f"""
        run: {{name: anthropic-e2e, concurrency: 2}}
        providers:
          - name: claude-sim
            model: anthropic/cached
            api_base: {asim.api_base}
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
    code = (
        "import sys\n"
        "from harness.cli import main\n"
        "try:\n"
        f"    main(['run', {str(config)!r}, '--out', {str(tmp_path / 'out')!r},"
        " '--run-id', 'r1', '--no-progress'])\n"
        "except SystemExit as e:\n    status = e.code\n"
        "print('LITELLM_IMPORTED' if 'litellm' in sys.modules else 'NO_LITELLM')\n"
        "sys.exit(status)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = "NO_LITELLM" if transport == "auto" else "LITELLM_IMPORTED"
    assert expected in result.stdout
    rows = pq.read_table(tmp_path / "out" / "r1").to_pylist()
    measured = [r for r in rows if not r["warmup"]]
    assert len(measured) == 3
    for row in measured:
        assert row["status"] == "ok", row["error_message"]
        assert row["transport"] == ("anthropic" if transport == "auto" else "litellm")
        # 6 prompt words + 7 cache reads + 3 cache writes; 12 words of answer.
        assert (row["input_tokens"], row["output_tokens"]) == (16, 12)
        assert (row["cached_input_tokens"], row["cache_write_tokens"]) == (7, 3)
        assert row["finish_reason"] == "stop"
        assert len(row["response_text"].split()) == 12


def test_a_run_mixing_clients_says_so(
    asim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from harness.cli import main
    from harness.report.build import build_report

    config = write_config(
        f"""
        run: {{name: mixed, concurrency: 2}}
        providers:
          - name: claude-native
            model: anthropic/cached
            api_base: {asim.api_base}
          - name: claude-litellm
            model: anthropic/cached
            api_base: {asim.api_base}
            transport: litellm
        suites:
          - name: hello
            kind: latency
            prompts: ["Say hello."]
            max_tokens: 8
            requests: 2
        """
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["run", str(config), "--out", str(out), "--run-id", "m1", "--no-progress"]
    )
    assert result.exit_code == 0, result.stderr
    assert "timed by clients of different error" in result.stderr
    assert "claude-litellm by litellm" in result.stderr
    assert "claude-native by anthropic" in result.stderr
    notes = build_report(out, "m1").notes
    assert any(n.startswith("timing: providers were timed by clients") for n in notes)
