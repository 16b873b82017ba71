"""The shared SSE framing loop (harness/providers/sse.py), on aiohttp's own StreamReader.

Whatever the line endings (LF, CRLF, CR), wherever the bytes are cut (inside a
line, inside a CRLF, inside a UTF-8 character), with comments and ``event:``
lines between, every event reaches the dialect's callback whole and in order.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import aiohttp
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.providers.sse import read_events
from harness.providers.trace import StreamTrace

# Payload text: anything but line breaks (which end an SSE line); é and 😀 are multi-byte.
TEXT = st.text(
    alphabet=st.sampled_from(list("ab {}:,\"'é😀[]DONE")), min_size=1, max_size=30
).filter(lambda t: not t.startswith(" "))  # one leading space after "data:" is the separator


def encode(events: list[list[str]], newline: str, extras: bool, last_blank: bool) -> bytes:
    out = []
    for i, lines in enumerate(events):
        if extras:
            out += [": keep-alive", "event: message", "id: 7"]
        out += [f"data: {line}" if j % 2 == 0 else f"data:{line}" for j, line in enumerate(lines)]
        if i < len(events) - 1 or last_blank:
            out.append("")
    return (newline.join(out) + newline).encode()


async def read(data: bytes, cuts: list[int], stop_at: int | None = None) -> tuple[Any, ...]:
    loop = asyncio.get_running_loop()
    # What StreamReader asks of its protocol (flow control is never needed at these sizes).
    protocol = SimpleNamespace(
        connected=True,
        _reading_paused=False,
        pause_reading=lambda **kw: None,
        resume_reading=lambda **kw: None,
    )
    reader = aiohttp.StreamReader(protocol, 2**16, loop=loop)  # type: ignore[arg-type]
    response = SimpleNamespace(content=reader)
    trace = StreamTrace(started_at=datetime.now(UTC))
    seen: list[str] = []

    def on_event(payload: str, now: float) -> bool | None:
        seen.append(payload)
        return True if stop_at is not None and len(seen) == stop_at else None

    async def feed() -> None:
        start = 0
        for cut in [*sorted(set(cuts)), len(data)]:
            if start < cut <= len(data):
                reader.feed_data(data[start:cut])
                start = cut
                await asyncio.sleep(0)  # let the loop read each piece on its own
        reader.feed_eof()

    feeder = asyncio.ensure_future(feed())
    outcome = await read_events(response, trace, 0.0, on_event)  # type: ignore[arg-type]
    await feeder
    return outcome, seen, trace


@settings(max_examples=150, deadline=None)
@given(
    events=st.lists(st.lists(TEXT, min_size=1, max_size=3), min_size=1, max_size=6),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    extras=st.booleans(),
    last_blank=st.booleans(),
    cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=12),
)
def test_every_event_arrives_whole_in_order(
    events: list[list[str]], newline: str, extras: bool, last_blank: bool, cuts: list[int]
) -> None:
    data = encode(events, newline, extras, last_blank)
    outcome, seen, trace = asyncio.run(read(data, cuts))
    # Multi-line data joins with "\n"; the last event counts even without its blank line.
    assert seen == ["\n".join(lines) for lines in events]
    assert outcome is None and trace.end_s is not None and trace.error_type is None


def test_an_ending_stops_the_read_and_stamps_the_end() -> None:
    data = encode([["one"], ["two"], ["three"]], "\r\n", False, True)
    outcome, seen, trace = asyncio.run(read(data, [3, 9, 20], stop_at=2))
    assert (outcome, seen) == (True, ["one", "two"])
    assert trace.end_s is not None


def test_an_unterminated_last_line_is_dropped() -> None:
    # A cut connection: "data: par" never got its line ending, so it may be cut short.
    outcome, seen, _ = asyncio.run(read(b"data: whole\n\ndata: par", [5]))
    assert (outcome, seen) == (None, ["whole"])


def test_invalid_utf8_is_a_malformed_stream() -> None:
    outcome, seen, trace = asyncio.run(read(b"data: ok\n\ndata: \xff\xfe\n\n", []))
    # One read: it fails as a whole, before any of its events is handed on.
    assert (outcome, seen) == (False, [])
    assert trace.error_type == "malformed_stream"
    assert "UTF-8" in (trace.error_message or "")
