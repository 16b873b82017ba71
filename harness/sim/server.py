"""An OpenAI-compatible chat-completions server with a known latency profile.

It is real HTTP on loopback (aiohttp), so the harness measures it exactly as it
would measure a remote provider. Each model name the client asks for can have
its own :class:`SimProfile`; unknown names get the default profile.

The answer is made of words taken from the prompt, chosen by a generator seeded
with the profile seed and the prompt, so the same request always gets the same
clearly artificial answer. One word is one token, both in the stream and in the
reported usage; prompt tokens are the whitespace-separated words of all messages.
A reasoning profile streams its reasoning words as ``delta.reasoning_content``
before the answer and counts them in ``completion_tokens`` (and, unless
``usage_reasoning`` is off, in ``completion_tokens_details.reasoning_tokens``),
as OpenAI, DeepSeek and vLLM do. ``tokens_per_chunk`` puts several words in one event.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import json
import random
import sys
import time
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from harness.secrets import is_secret_name
from harness.sim.capacity import Capacity
from harness.sim.profile import GRADE_HEADER, SimProfile
from harness.sim.workloads import Workloads, content_text, scripted_reply, with_cache

_FALLBACK_WORDS = ("simulated", "answer", "from", "the", "harness", "provider")


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):  # OpenAI content parts
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return "\n".join(parts)


def answer_words(profile: SimProfile, model: str, prompt: str, max_tokens: int | None) -> list[str]:
    """The words the simulator answers with: deterministic for (seed, model, prompt)."""
    digest = hashlib.sha256(f"{profile.seed}\0{model}\0{prompt}".encode()).digest()
    rng = random.Random(digest)
    vocabulary = [w.strip(".,;:!?\"'()[]") for w in prompt.split()] or list(_FALLBACK_WORDS)
    vocabulary = [w for w in vocabulary if w] or list(_FALLBACK_WORDS)
    n = profile.output_tokens if max_tokens is None else min(profile.output_tokens, max_tokens)
    return [rng.choice(vocabulary) for _ in range(max(n, 1))]


ABSTAIN_WORDS = ("I", "don't", "know")


def case_draw(seed: int, case: str, repeat: int) -> float:
    """The draw that grades one answer, uniform in [0, 1): the first 8 bytes of
    ``sha256(f"{seed}:{case}:{repeat}")`` as a big-endian integer, divided by 2**64.

    It depends on the profile's seed, the case and the repeat only, so a provider's
    right and wrong answers are the same in every run, in any order of requests.
    """
    digest = hashlib.sha256(f"{seed}:{case}:{repeat}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def graded_words(profile: SimProfile, hint: str | None, prompt: str) -> list[str] | None:
    """The answer of a profile with an ``accuracy`` to a case whose reference came with
    the request (the :data:`GRADE_HEADER`), or None to answer as usual.

    With ``u = case_draw(seed, case, repeat)``: ``u < accuracy`` answers the first reference
    ("I don't know" for an unanswerable case); ``u < accuracy + abstain_rate`` abstains;
    otherwise a plausible wrong answer: a span of the prompt as long as the reference that
    is no reference and no abstention.
    """
    if profile.accuracy is None or not hint:
        return None
    try:
        data = json.loads(hint)
        case, repeat = str(data["case"]), int(data["repeat"])
        references = [str(r) for r in data.get("references") or [] if str(r).strip()]
    except (ValueError, KeyError, TypeError):
        return None
    u = case_draw(profile.seed, case, repeat)
    if u < profile.accuracy:
        return references[0].split() if references else list(ABSTAIN_WORDS)
    if u < profile.accuracy + profile.abstain_rate:
        return list(ABSTAIN_WORDS)
    return wrong_words(prompt, references, random.Random(f"{profile.seed}:{case}:{repeat}:wrong"))


def wrong_words(prompt: str, references: list[str], rng: random.Random) -> list[str]:
    """A span of the prompt that a reader could take for an answer, but that is wrong:
    as many words as the first reference (1 to 4), preferably starting with a capital or
    a digit, whose SQuAD normalisation matches no reference and is no abstention."""
    from harness.scoring.abstention import is_abstention
    from harness.scoring.squad import normalize_answer

    words = [w.strip(".,;:!?\"'()[]") for w in prompt.split()]
    words = [w for w in words if w] or list(_FALLBACK_WORDS)
    size = min(4, max(1, len(references[0].split()) if references else 2))
    size = min(size, len(words))
    taken = {normalize_answer(r) for r in references}

    def fits(span: list[str]) -> bool:
        text = " ".join(span)
        return (
            bool(normalize_answer(text))
            and normalize_answer(text) not in taken
            and (not is_abstention(text))
        )

    spans = [words[i : i + size] for i in range(len(words) - size + 1)]
    spans = [s for s in spans if fits(s)]
    plausible = [s for s in spans if s[0][:1].isupper() or s[0][:1].isdigit()]
    if plausible or spans:
        return rng.choice(plausible or spans)
    return ["not", "in", "the", "passages", "either"]


def reasoning_words(profile: SimProfile, model: str, prompt: str) -> list[str]:
    """The reasoning a reasoning profile streams first: deterministic, apart from the answer."""
    if not profile.reasoning_tokens:
        return []
    digest = hashlib.sha256(f"{profile.seed}\0{model}\0reasoning\0{prompt}".encode()).digest()
    rng = random.Random(digest)
    vocabulary = [w.strip(".,;:!?\"'()[]") for w in prompt.split()]
    vocabulary = [w for w in vocabulary if w] or list(_FALLBACK_WORDS)
    return [rng.choice(vocabulary) for _ in range(profile.reasoning_tokens)]


def stream_events(
    reasoning: list[str], words: list[str], delays: list[float], per_chunk: int
) -> list[tuple[float, dict[str, str]]]:
    """(due offset, delta) of each event: reasoning first, then text, ``per_chunk`` words each.

    ``delays`` holds one offset per token (reasoning ones first); an event is due
    when its last token is, since a server cannot send a token before it exists.
    """
    events: list[tuple[float, dict[str, str]]] = []
    start = 0
    for key, tokens in (("reasoning_content", reasoning), ("content", words)):
        for j in range(0, len(tokens), per_chunk):
            group = tokens[j : j + per_chunk]
            text = "".join(w if j + i == 0 else " " + w for i, w in enumerate(group))
            events.append((delays[start + j + len(group) - 1], {key: text}))
        start += len(tokens)
    return events


class SimServer:
    """The aiohttp application and its per-request randomness."""

    def __init__(self, default: SimProfile, profiles: Mapping[str, SimProfile] | None = None):
        self.default = default
        self.profiles = dict(profiles or {})
        self._counter = itertools.count()
        self._per_model: dict[str, int] = {}
        self.app = web.Application()
        self.app.router.add_get("/v1/models", self.models)
        self.app.router.add_get("/health", self.health)
        self.app.router.add_get("/sim/stats", self.stats)
        self.app.router.add_get("/sim/timings", self.timings)
        # Requests that carry a "user" field get their server-side times recorded
        # (time.perf_counter: one clock for every process on a Linux host), so a
        # benchmark can tell the client's timestamp error from this server's.
        self._timings: dict[str, dict[str, float | None]] = {}
        self.requests_received = 0
        self.workloads = Workloads()  # prefix cache, received messages (sim/workloads.py)
        self.app.router.add_get("/sim/received", self.received)
        self.capacity = Capacity()
        self.app.router.add_post("/v1/chat/completions", self.chat_completions)
        from harness.sim import anthropic  # the Anthropic Messages dialect

        for route in anthropic.ROUTES:
            self.app.router.add_post(route, self.anthropic_messages)
        from harness.sim import gemini  # the Gemini streamGenerateContent dialect

        for path, streamed in gemini.routes():
            self.app.router.add_post(path, functools.partial(gemini.generate, self, streamed))

    async def anthropic_messages(self, request: web.Request) -> web.StreamResponse:
        """The Anthropic dialect, behind the same capacity limits (its schedule starts
        inside the handler, so a queued request's TTFT grows there too)."""
        from harness.sim import anthropic

        try:
            model = str((await request.json()).get("model", "sim"))
        except (ValueError, AttributeError, TypeError):  # not JSON, not UTF-8, not an object
            return await anthropic.messages(self, request)  # it answers the 400
        profile = self.profile_for(model)
        retry_after = self.capacity.refuse(model, profile, time.perf_counter())
        if retry_after is not None:
            self.requests_received += 1
            response = anthropic.error(429, "rate_limit_error", "simulated rate ceiling")
            response.headers["retry-after"] = f"{retry_after:.3f}"
            return response
        async with self.capacity.slot(model, profile):
            return await anthropic.messages(self, request)

    def _fault(self, model: str, profile: SimProfile, rng: random.Random) -> str | None:
        """This request's fault: the model's script first, then the probabilities."""
        n = self._per_model.get(model, 0)
        self._per_model[model] = n + 1
        if n < len(profile.script):
            scripted = profile.script[n]
            return None if scripted == "ok" else scripted
        draw = rng.random()
        for fault, probability in profile.faults.items():
            if draw < probability:
                return fault
            draw -= probability
        return None

    def stamps_for(self, user: object, received: float) -> dict[str, float | None] | None:
        """The write stamps (``/sim/timings``) of a request that names a user, else None."""
        if not isinstance(user, str):
            return None
        stamps: dict[str, float | None] = {
            "received": received,
            "first_sent": None,
            "last_sent": None,
        }
        self._timings[user] = stamps
        return stamps

    def profile_for(self, model: str) -> SimProfile:
        return self.profiles.get(model, self.default)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def stats(self, request: web.Request) -> web.Response:
        """How many chat requests arrived: lets tests prove that nothing was sent."""
        return web.json_response(
            {
                "requests": self.requests_received,
                "queued": self.capacity.queued,
                "refused_429": self.capacity.refused,
            }
        )

    async def timings(self, request: web.Request) -> web.Response:
        """Server-side times of requests that named a ``user``; cleared when read."""
        served, self._timings = self._timings, {}
        return web.json_response(served)

    async def received(self, request: web.Request) -> web.Response:
        """Model and messages of each request since the last read, in arrival order."""
        return web.json_response(self.workloads.take_received())

    async def models(self, request: web.Request) -> web.Response:
        names = sorted(self.profiles) or ["sim"]
        data = [{"id": n, "object": "model", "owned_by": "harness-sim"} for n in names]
        return web.json_response({"object": "list", "data": data})

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        received = time.perf_counter()
        self.requests_received += 1
        try:
            body = await request.json()
            messages = body["messages"]
            model = str(body.get("model", "sim"))
        except (json.JSONDecodeError, KeyError, TypeError):
            return _error(400, "invalid_request_error", "body must be JSON with 'messages'")
        profile = self.profile_for(model)
        retry_after = self.capacity.refuse(model, profile, received)
        if retry_after is not None:
            response = _error(429, "rate_limit_exceeded", "simulated rate ceiling (max_rps)")
            response.headers["Retry-After"] = f"{retry_after:.3f}"
            return response
        async with self.capacity.slot(model, profile):
            # A queued request's schedule starts when it gets its slot: its TTFT grows.
            return await self._chat(request, body, messages, model, profile, received)

    async def _chat(
        self,
        request: web.Request,
        body: dict[str, Any],
        messages: list[dict[str, Any]],
        model: str,
        profile: SimProfile,
        arrived: float,
    ) -> web.StreamResponse:
        # Delays run from the arrival, or, under max_concurrency, from getting a slot.
        received = arrived if profile.max_concurrency is None else time.perf_counter()
        stamps = self.stamps_for(body.get("user"), arrived)
        # One generator per request, seeded by the request's ordinal, so a run's
        # errors and jitter are reproducible while requests still differ.
        rng = random.Random(f"{profile.seed}:{next(self._counter)}")
        if rng.random() < profile.error_rate:
            return _error(500, "server_error", "simulated server error")
        fault = self._fault(model, profile, rng)
        if fault == "rate_limit":
            response = _error(429, "rate_limit_exceeded", "simulated rate limit")
            response.headers["Retry-After"] = f"{profile.retry_after_s:g}"
            return response
        if fault == "server_error":
            return _error(503, "server_error", "simulated overload")
        if fault == "auth_error":
            # Careless providers echo the credential; the client must scrub it.
            # Every secret-named header is echoed (x-api-key, X-Auth-Token, ...).
            sent = request.headers.get("Authorization", "")
            others = [f"{k}: {v}" for k, v in request.headers.items() if _echoed(k)]
            echo = f" (headers {'; '.join(others)})" if others else ""
            # And log it, as a careless server would: the harness scrubs the run's logs.
            print(f"sim: rejected credentials {sent}{echo}", file=sys.stderr, flush=True)
            return _error(401, "invalid_api_key", f"Incorrect API key provided: {sent}{echo}")
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        prompt = _prompt_text(messages)
        graded = graded_words(profile, request.headers.get(GRADE_HEADER), prompt)
        words = graded or answer_words(profile, model, prompt, max_tokens)
        parts = [
            (str(m.get("role")), content_text(m.get("content")))
            for m in messages
            if isinstance(m, dict)
        ]
        self.workloads.record(model, parts)
        cached = self.workloads.cached_tokens(profile, model, parts)
        scripted = scripted_reply(profile, parts)
        if scripted is not None:
            words = scripted[: max_tokens or None]
        if graded is None and rng.random() < profile.abstain_rate:
            words = ["I", "don't", "know"][: max(1, max_tokens or 3)]
        if max_tokens:
            words = words[: max(1, int(max_tokens))]
        schema = _json_schema(body.get("response_format"))
        if schema is not None:
            # Structured output: a document that fits the schema, split into "tokens".
            document = json.dumps(fill_schema(schema, random.Random(prompt + str(profile.seed))))
            if profile.invalid_json_rate and rng.random() < profile.invalid_json_rate:
                document = document[:-1]  # cut before its closing brace: not JSON
            words = document.split(" ")
        calls = tool_calls_for(profile, body, prompt)
        if calls:
            words = []  # an answer that calls tools has no text
        finish = "length" if max_tokens is not None and len(words) >= max_tokens else "stop"
        tool_tokens = sum(len(tool_call_pieces(call)) for call in calls)
        if calls:
            finish = "tool_calls"
        reasoning = reasoning_words(profile, model, prompt)
        delays = _token_schedule(
            with_cache(profile, cached), len(reasoning) + len(words) + tool_tokens, rng
        )
        usage: dict[str, Any] = {
            "prompt_tokens": len(prompt.split()),
            "completion_tokens": len(reasoning) + len(words) + tool_tokens,
            "total_tokens": len(prompt.split()) + len(reasoning) + len(words) + tool_tokens,
        }
        if profile.prefix_cache:
            usage["prompt_tokens_details"] = {"cached_tokens": cached}
        if reasoning and profile.usage_reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": len(reasoning)}
        ident = f"chatcmpl-sim-{uuid.uuid4().hex[:16]}"
        if fault in ("empty", "content_filter"):
            calls = []  # these faults are about text; delays below hold no tool tokens
        if fault == "empty":
            reasoning, words, delays = [], [], []
            usage["completion_tokens"] = 0
            usage.pop("completion_tokens_details", None)
        if fault == "content_filter":
            words, finish = words[:2], "content_filter"
            delays = delays[: len(reasoning) + 2]
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            try:
                return await _stream(
                    request,
                    ident,
                    model,
                    stream_events(reasoning, words, delays, profile.tokens_per_chunk)
                    + tool_call_events(calls, delays[len(reasoning) + len(words) :]),
                    received,
                    finish,
                    usage,
                    include_usage,
                    fault,
                    profile.hang_s,
                    stamps,
                )
            except ConnectionError:
                # The client went away (it timed out, or gave up on a bad stream):
                # normal in a benchmark, not worth a traceback in the log.
                return web.Response(status=499)
        if fault in ("hang_before_first_token", "hang_mid_stream"):
            await asyncio.sleep(profile.hang_s)
        await _sleep_until(received + (delays[-1] if delays else 0.0))
        return web.json_response(
            {
                "id": ident,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": " ".join(words) if not calls else None,
                            **({"reasoning_content": " ".join(reasoning)} if reasoning else {}),
                            **({"tool_calls": calls} if calls else {}),
                        },
                        "finish_reason": finish,
                    }
                ],
                "usage": usage,
            }
        )


def _echoed(header: str) -> bool:
    return header.lower() != "authorization" and is_secret_name(header)


def _json_schema(response_format: Any) -> dict[str, Any] | None:
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else {"type": "object"}
    if response_format.get("type") == "json_object":
        # llama-cpp-python's (and Anyscale's) dialect: {"type": "json_object", "schema": ...}
        schema = response_format.get("schema")
        return schema if isinstance(schema, dict) else {"type": "object"}
    return None


def fill_schema(schema: dict[str, Any], rng: random.Random) -> Any:
    """A deterministic value that satisfies a (simple) JSON schema.

    A schema's ``const``, first ``examples`` entry or ``default`` is the value (so a test
    knows what the simulated model answers); otherwise an ``enum`` member or a value of
    the type, drawn from ``rng``.
    """
    if "const" in schema:
        return schema["const"]
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: fill_schema(sub, rng) for name, sub in props.items()}
    if kind == "array":
        return [fill_schema(schema.get("items", {}), rng) for _ in range(2)]
    if kind == "integer":
        return rng.randint(int(schema.get("minimum", 0)), int(schema.get("maximum", 10)))
    if kind == "number":
        return rng.uniform(float(schema.get("minimum", 0)), float(schema.get("maximum", 1)))
    if kind == "boolean":
        return rng.random() < 0.5
    return "simulated " + " ".join(rng.choice(_FALLBACK_WORDS) for _ in range(4))


def tool_calls_for(profile: SimProfile, body: dict[str, Any], prompt: str) -> list[dict[str, Any]]:
    """The calls this request gets, in OpenAI's message format (none: ``[]``).

    None without ``tools`` or with ``tool_choice: "none"``. The profile's ``tool_calls``
    when it has them; else one call of the first declared tool (or the one
    ``tool_choice`` names) with its required arguments (every property when the schema
    lists none) filled by :func:`fill_schema`. Call ids are ``call_<i>``.
    """
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not isinstance(tools, list) or not tools or choice == "none":
        return []
    functions: list[dict[str, Any]] = [
        t["function"]
        for t in tools
        if isinstance(t, dict) and isinstance(t.get("function"), dict) and t["function"].get("name")
    ]
    if profile.tool_calls is not None:
        made = [
            (c.name, c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments))
            for c in profile.tool_calls
        ]
    elif functions:
        function = functions[0]
        if isinstance(choice, dict):
            named = (choice.get("function") or {}).get("name")
            function = next((f for f in functions if f["name"] == named), function)
        params = function.get("parameters") or {}
        props = params.get("properties") or {}
        required = params.get("required") or list(props)
        rng = random.Random(prompt + str(profile.seed))
        args = {k: fill_schema(props.get(k) or {}, rng) for k in required}
        made = [(str(function["name"]), json.dumps(args))]
    else:
        return []
    return [
        {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": text}}
        for i, (name, text) in enumerate(made)
    ]


def tool_call_pieces(call: dict[str, Any]) -> list[str]:
    """The streamed argument fragments of one call, one token each: its arguments' JSON
    text cut before every space (so they join back exactly), after a fragment with the
    name (itself one token, with empty arguments)."""
    text = call["function"]["arguments"]
    if not text:
        return [""]
    return ["", *(w if i == 0 else " " + w for i, w in enumerate(text.split(" ")))]


def tool_call_events(
    calls: list[dict[str, Any]], delays: list[float]
) -> list[tuple[float, dict[str, Any]]]:
    """(due offset, delta) of the streamed tool calls, as OpenAI sends them: per call a
    first fragment with ``index``, ``id``, ``type`` and the name, then argument
    fragments under the same ``index``. ``delays``: one offset per token."""
    events: list[tuple[float, dict[str, Any]]] = []
    token = 0
    for index, call in enumerate(calls):
        for j, piece in enumerate(tool_call_pieces(call)):
            fragment: dict[str, Any] = {"index": index, "function": {"arguments": piece}}
            if j == 0:
                fragment |= {"id": call["id"], "type": "function"}
                fragment["function"] = {"name": call["function"]["name"], "arguments": ""}
            events.append((delays[token], {"tool_calls": [fragment]}))
            token += 1
    return events


def _token_schedule(profile: SimProfile, n: int, rng: random.Random) -> list[float]:
    """Offsets (s) from the request's arrival at which each token is due."""

    def jittered(ms: float) -> float:
        if profile.jitter == 0:
            return ms / 1000
        return max(0.0, rng.gauss(ms, ms * profile.jitter)) / 1000

    offsets = [jittered(profile.ttft_ms)]
    for _ in range(n - 1):
        offsets.append(offsets[-1] + jittered(profile.itl_ms))
    return offsets


# asyncio's timers round to the loop's clock resolution and wake up late by up
# to a millisecond; the last stretch is spent yielding instead, so the profile's
# times are kept to a fraction of a millisecond (the simulator is the ground
# truth of the clock-fidelity benchmark).
_SPIN_S = 0.0015


async def _sleep_until(deadline: float) -> None:
    # Sleeping to an absolute deadline keeps the schedule from drifting by the
    # time spent writing each chunk.
    delay = deadline - time.perf_counter() - _SPIN_S
    if delay > 0:
        await asyncio.sleep(delay)
    while time.perf_counter() < deadline:  # noqa: ASYNC110 - a deliberate sub-ms spin
        await asyncio.sleep(0)


def _error(status: int, kind: str, message: str) -> web.Response:
    body = {"error": {"message": message, "type": kind, "code": status}}
    return web.json_response(body, status=status)


def _chunk(ident: str, model: str, delta: dict[str, Any], finish: str | None) -> bytes:
    payload = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def _stream(
    request: web.Request,
    ident: str,
    model: str,
    events: list[tuple[float, dict[str, Any]]],
    received: float,
    finish: str,
    usage: dict[str, Any],
    include_usage: bool,
    fault: str | None = None,
    hang_s: float = 0.0,
    stamps: dict[str, float | None] | None = None,
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    # Like OpenAI, the first chunk carries only the role: it is not a token, and
    # a client that counts it as the first token reports a TTFT that is too short.
    await response.write(_chunk(ident, model, {"role": "assistant", "content": ""}, None))
    half = len(events) // 2
    if fault == "hang_before_first_token":
        await asyncio.sleep(hang_s)
    if fault is None and events and events[-1][0] == events[0][0]:
        # No inter-token delay: the whole answer in one write, so that a
        # capacity benchmark measures the client rather than this server.
        await _sleep_until(received + events[0][0])
        if stamps is not None:
            stamps["first_sent"] = stamps["last_sent"] = time.perf_counter()
        await response.write(b"".join(_chunk(ident, model, d, None) for _, d in events))
        events = []
    # The last text chunk: what ITL and E2E are measured by (stamped like the first).
    last_text = max((i for i, (_, d) in enumerate(events) if "content" in d), default=-1)
    for i, (due, delta) in enumerate(events):
        if i == half and fault == "hang_mid_stream":
            await asyncio.sleep(hang_s)
        if i == half and fault == "connection_reset":
            # Drop the connection without finishing the chunked body.
            if request.transport is not None:
                request.transport.abort()
            return response
        if i == half and fault == "malformed_chunk":
            await response.write(b'data: {"id": "broken", "choices": [\n\n')
        await _sleep_until(received + due)
        if stamps is not None and "content" in delta:
            now = time.perf_counter()
            if stamps["first_sent"] is None:
                stamps["first_sent"] = now  # the first text: what TTFT measures
            if i == last_text:
                stamps["last_sent"] = now
        await response.write(_chunk(ident, model, delta, None))
    if fault == "no_finish":
        await response.write_eof()
        return response
    await response.write(_chunk(ident, model, {}, finish))
    if include_usage:
        payload = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [],
            "usage": usage,
        }
        await response.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def serve(
    default: SimProfile,
    profiles: Mapping[str, SimProfile] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ready: asyncio.Future[int] | None = None,
) -> None:
    """Serve until cancelled; prints ``listening on http://HOST:PORT/v1`` once bound."""
    server = SimServer(default, profiles)
    runner = web.AppRunner(server.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"listening on http://{host}:{bound}/v1", flush=True)
    if ready is not None:
        ready.set_result(bound)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
