"""The SSE framing loop every lean client reads its stream with (OpenAI, Anthropic, Gemini).

One timestamp per socket read: every event that arrives in one read shares it,
since that is when the client could first see them. The bytes are decoded
incrementally (a UTF-8 character split between two reads is kept), CR and CRLF
line endings are accepted, an unterminated line waits for the next read, and
the ``data:`` lines of one event are joined with newlines, as the SSE spec says.
``event:``, ``id:``, ``retry:`` and comment lines carry nothing the dialects use
(Anthropic's ``event:`` repeats the payload's ``type``) and are skipped.

Each dialect passes only ``on_event(payload, now)``: None to go on, True when
the stream has ended cleanly (OpenAI's ``[DONE]``, Anthropic's
``message_stop``), False when it failed (the callback has put the error in the
trace). This is the hot path: per read one clock call, one decode and one split;
per event one callback.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable

import aiohttp

from harness.providers.trace import StreamTrace

__all__ = ["EventHandler", "read_events"]

EventHandler = Callable[[str, float], bool | None]
"""``on_event(payload, now)``: None to go on, True at a clean end, False on failure."""

_perf_counter = time.perf_counter


async def read_events(
    response: aiohttp.ClientResponse, trace: StreamTrace, t0: float, on_event: EventHandler
) -> bool | None:
    """Feed each event's data to ``on_event`` until it ends the stream or the body ends.

    Returns True (ended cleanly) or False (failed) as ``on_event`` said, with
    ``trace.end_s`` at the read that carried the ending; None when the body
    ended first (``trace.end_s`` at EOF): whether that is an ending is the
    dialect's call. Invalid UTF-8 fails the stream as ``malformed_stream``.
    """
    decode = codecs.getincrementaldecoder("utf-8")().decode  # keeps a split character
    tail = ""  # an unterminated line, continued by the next read
    pending: list[str] = []  # data lines of the event being assembled
    after_cr = False  # the previous read ended with '\r', maybe half of '\r\n'
    async for raw in response.content.iter_any():
        now = _perf_counter() - t0
        try:
            data = decode(raw)
        except UnicodeDecodeError as exc:
            trace.error_type = "malformed_stream"
            trace.error_message = f"invalid UTF-8 in the stream: {exc}"[:2000]
            return False
        if "\r" in data or after_cr:  # rare: CR or CRLF line endings
            if after_cr and data.startswith("\n"):
                data = data[1:]
            after_cr = data.endswith("\r")
            data = data.replace("\r\n", "\n").replace("\r", "\n")
        if tail:
            data = tail + data
        lines = data.split("\n")
        tail = lines.pop()
        for line in lines:
            if line:
                if line.startswith("data:"):
                    pending.append(line[6:] if line[5:6] == " " else line[5:])
                continue
            if not pending:
                continue
            payload = pending[0] if len(pending) == 1 else "\n".join(pending)
            pending.clear()
            outcome = on_event(payload, now)
            if outcome is not None:
                if outcome:
                    trace.end_s = now
                return outcome
    # At EOF a last event whose lines all ended but which lacks the blank line is
    # still whole; an unterminated line (``tail``) may be cut, and is dropped.
    now = _perf_counter() - t0
    if pending:
        outcome = on_event("\n".join(pending), now)
        if outcome is not None:
            if outcome:
                trace.end_s = now
            return outcome
    trace.end_s = now
    return None
