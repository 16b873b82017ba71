"""Streamed tool calls: OpenAI's ``delta.tool_calls`` fragments assembled into whole calls.

A streamed answer that calls tools sends, per call, a first fragment with the call's
``index``, ``id`` and ``function.name``, then fragments of ``function.arguments`` (a JSON
text cut anywhere) under the same ``index``. Parallel calls interleave by ``index``.
Every transport hands each delta's ``tool_calls`` list to :func:`on_tool_deltas`; the
fragments may be dicts (the direct transport's parsed JSON) or objects with attributes
(litellm's delta models). The row gets the assembled calls as JSON text
(``tool_calls``: ``[{"id", "name", "arguments"}]``, arguments as the raw text the model
produced, so that a scorer sees invalid JSON as such) and the time to the first
tool-call token (``ttft_tool_s``: the first fragment carrying a name or argument text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ToolCalls", "on_tool_deltas", "tool_columns"]


@dataclass
class _Call:
    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class ToolCalls:
    """The tool calls of one stream, by their ``index``, and when their first token came."""

    first_s: float | None = None
    chunks: int = 0
    """Fragments that carried a name or argument text (each one output token or more)."""
    calls: dict[int, _Call] = field(default_factory=dict)

    def as_list(self) -> list[dict[str, Any]]:
        """The assembled calls in index order: ``{"id", "name", "arguments"}``."""
        return [
            {"id": call.id, "name": call.name, "arguments": "".join(call.arguments)}
            for _, call in sorted(self.calls.items())
        ]


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def on_tool_deltas(calls: ToolCalls | None, fragments: Any, now: float) -> ToolCalls:
    """Apply one delta's ``tool_calls`` fragments (received at offset ``now``).

    Returns the (possibly new) :class:`ToolCalls`. A fragment without an ``index``
    continues the last call (some servers omit it when there is a single call). A legacy
    ``delta.function_call`` (one object, not a list: llama-cpp-python streams these, with
    the name repeated in every chunk) is the call of index 0; a name equal to the one
    already assembled is a repeat, not a fragment.
    Raises :class:`TypeError` for a fragment whose name or arguments are not text: the
    transport records that as a malformed stream.
    """
    if calls is None:
        calls = ToolCalls()
    if isinstance(fragments, dict) or hasattr(fragments, "arguments"):  # a function_call
        fragments = [{"index": 0, "function": fragments}]
    if not isinstance(fragments, list | tuple):
        raise TypeError("delta.tool_calls is not a list")
    for fragment in fragments:
        index = _get(fragment, "index")
        if not isinstance(index, int):
            index = max(calls.calls, default=0)
        call = calls.calls.setdefault(index, _Call())
        ident = _get(fragment, "id")
        if ident:
            call.id = str(ident)
        function = _get(fragment, "function")
        if function is None:
            continue
        name, arguments = _get(function, "name"), _get(function, "arguments")
        if name is not None and not isinstance(name, str):
            raise TypeError("tool call function.name is not a string")
        if arguments is not None and not isinstance(arguments, str):
            # Some servers send the arguments as an object rather than JSON text.
            arguments = json.dumps(arguments)
        if name and name != call.name:
            call.name += name
        if arguments:
            call.arguments.append(arguments)
        if name or arguments:
            calls.chunks += 1
            if calls.first_s is None:
                calls.first_s = now
    return calls


def tool_columns(calls: ToolCalls | None) -> dict[str, Any]:
    """The row's ``tool_calls`` (JSON text, None without calls) and ``ttft_tool_s``."""
    if calls is None or not calls.calls:
        return {"tool_calls": None, "ttft_tool_s": None}
    return {
        "tool_calls": json.dumps(calls.as_list(), ensure_ascii=False),
        "ttft_tool_s": calls.first_s,
    }
