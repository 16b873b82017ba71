"""A simulated provider told how good to be: ``accuracy`` and ``abstain_rate`` over RAG cases.

The rule (harness.sim.server.graded_words), worked out here from its statement alone:
``u = int.from_bytes(sha256(f"{seed}:{case}:{repeat}")[:8], "big") / 2**64``; ``u < accuracy``
answers the first reference ("I don't know" for an unanswerable case), ``u < accuracy +
abstain_rate`` abstains, anything else is a wrong span of the prompt. The reference reaches
the simulator in a request header that the pipeline adds for simulated endpoints only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from aiohttp import web
from click.testing import CliRunner
from pydantic import ValidationError

from harness.cli import main
from harness.providers.direct import request_body
from harness.providers.trace import Endpoint
from harness.request import RequestSpec
from harness.run.pipeline import Sender, wire_endpoint
from harness.sim import SimProfile
from harness.sim.profile import GRADE_HEADER

from ..conftest import REPO

ACME = REPO / "suites" / "rag_qa" / "acme_kb.jsonl"


def draw(seed: int, case: str, repeat: int) -> float:
    """The stated rule, written out independently of the simulator's code."""
    digest = hashlib.sha256(f"{seed}:{case}:{repeat}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def acme_references(limit: int) -> dict[str, list[str]]:
    cases = [json.loads(line) for line in ACME.read_text().splitlines()[:limit]]
    return {c["id"]: list(c["references"]) for c in cases}


def test_exact_match_count_is_what_the_seeded_rule_gives(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    accuracy, abstain, seed, n, repeats = 0.7, 0.1, 5, 20, 2
    config = write_config(
        f"""
        run: {{name: acc, concurrency: 8}}
        providers:
          - name: graded
            simulate: {{ttft_ms: 1, itl_ms: 0, accuracy: {accuracy}, abstain_rate: {abstain},
                        seed: {seed}}}
        suites:
          - {{name: acme, kind: rag_qa, dataset: {ACME}, limit: {n}, repeats: {repeats}}}
        """
    )
    root = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(root)
    assert len(rows) == n * repeats and (rows["status"] == "ok").all()

    references = acme_references(n)
    right = abstained = expected_em = 0
    for _, row in rows.iterrows():
        u = draw(seed, row["case_id"], int(row["repeat"]))
        refs = references[row["case_id"]]
        if u < accuracy:
            right += 1
            expected_em += 1  # the reference, or a correct abstention
            assert row["exact_match_abstain"] == 1.0, (row["case_id"], row["response_text"])
        elif u < accuracy + abstain:
            abstained += 1
            expected_em += 0 if refs else 1  # abstaining is right only where nothing answers
            assert row["abstained"], row["response_text"]
        else:
            # A wrong answer: no reference, no abstention.
            assert row["exact_match_abstain"] == 0.0, (row["case_id"], row["response_text"])
            assert not row["abstained"], row["response_text"]
    assert int(rows["exact_match_abstain"].sum()) == expected_em
    # The draws are spread as the shares say (40 answers: ~28 right, ~4 abstentions).
    assert 20 <= right <= 36 and abstained <= 10

    # Deterministic per (seed, case, repeat): a second run answers the same, word for word.
    again = tmp_path / "again"
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(again), "--no-progress"])
    assert result.exit_code == 0, result.output
    key = ["case_id", "repeat"]
    first = rows.sort_values(key)["response_text"].tolist()
    second = pd.read_parquet(again).sort_values(key)["response_text"].tolist()
    assert first == second


def test_accuracy_and_abstain_rate_are_shares_of_the_same_answers() -> None:
    with pytest.raises(ValidationError, match="at most 1"):
        SimProfile(accuracy=0.8, abstain_rate=0.3)
    assert SimProfile(accuracy=0.7, abstain_rate=0.3).accuracy == 0.7


# --------------------------------------------------------------------------- out of band


class Recorder:
    """A real loopback server that records each request's headers and body, and answers
    with a one-word OpenAI stream."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, str], bytes]] = []
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((dict(request.headers), await request.read()))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for delta, finish in (({"content": "word"}, None), ({}, "stop")):
            chunk = {"id": "x", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        return response


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, str]]:
    import asyncio
    import threading

    server = Recorder()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(server.app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{port}/v1"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.run_until_complete(runner.cleanup())
    loop.close()


def _endpoint(name: str, api_base: str, simulated: bool) -> Endpoint:
    return Endpoint(
        provider=name,
        model=f"openai/{name}",
        simulated=simulated,
        api_base=api_base,
        api_key="k",
        params={"temperature": 0},
        timeout_s=10,
        transport="direct",
    )


def _rag_request(provider: str) -> RequestSpec:
    return RequestSpec(
        suite="acme",
        suite_kind="rag_qa",
        case_id="acme-006",
        repeat=1,
        provider=provider,
        messages=[{"role": "user", "content": "Who is the CISO? Passage: Priya Raman leads."}],
        max_tokens=16,
        meta={
            "references": ["Priya Raman"],
            "contexts": ["Priya Raman leads."],
            "question": "Who is the CISO?",
            "answer_regex": None,
        },
    )


def test_the_reference_reaches_simulated_endpoints_only(recorder: tuple[Recorder, str]) -> None:
    import asyncio

    server, base = recorder
    real, simulated = _endpoint("real", base, False), _endpoint("sim", base, True)
    sender = Sender({"real": real, "sim": simulated}, {})

    async def both() -> list[dict[str, Any]]:
        try:
            return [await sender(_rag_request("real")), await sender(_rag_request("sim"))]
        finally:
            await sender.close()

    rows = asyncio.run(both())
    assert [r["status"] for r in rows] == ["ok", "ok"]
    (real_headers, real_body), (sim_headers, _) = server.seen
    # The real provider's request is exactly the request without any hint: no header of
    # ours, and the body is the plain request body (the reference is in the passage the
    # user sends, not in any field the pipeline added).
    assert not any(k.lower().startswith("x-harness") for k in real_headers), real_headers
    assert GRADE_HEADER.lower() not in {k.lower() for k in real_headers}
    assert json.loads(real_body) == request_body(real, _rag_request("real"))
    assert "references" not in real_body.decode()
    assert wire_endpoint(real, _rag_request("real")) is real
    # The simulated one carries the case, its repeat and the references, in the header only.
    hint = json.loads(sim_headers[GRADE_HEADER])
    assert hint == {"case": "acme-006", "repeat": 1, "references": ["Priya Raman"]}
    # A latency request (no references) goes to a simulated endpoint unchanged too.
    latency = RequestSpec("s", "latency", "p0", 0, "sim", [{"role": "user", "content": "x"}], 8)
    assert wire_endpoint(simulated, latency) is simulated
