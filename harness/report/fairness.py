"""Whether a run's providers were timed by clients of comparable error.

Each row's ``transport`` column says which client measured it, and its
``clock`` column how: ``socket`` (the request stamped when its bytes were
written, each chunk when its bytes arrived) or ``call`` (the clock started at
the call and chunks stamped after parsing). The direct (OpenAI-compatible),
native Anthropic and native Gemini clients time at the socket; so does litellm, through the
stamping client of :mod:`harness.providers.socket_stamps`, except for a
provider whose litellm handler does not use it (``call``). Rows written before
the ``clock`` column existed have none: their litellm rows were on the call
clock. A run that compares providers measured by different paths says so, with
each path's measured bound.

The bounds are constants, measured by ``benchmarks/dialect_clock.py`` on the
development machine (2 cores, loopback simulator, TTFT 120 ms, ITL 15 ms, 64
tokens, 32 concurrent streams): the client's TTFT error, p50 and p99 in ms,
against the simulator's own write stamps. They are an order of magnitude, not
this run's error: the machine and the load change them.

Bedrock (ConverseStream: AWS event-stream framing, SigV4) goes through
litellm's ``AsyncHTTPHandler`` like Anthropic, so it is stamped at the socket
too; its bound is not measured here: the simulator does not speak AWS
event-stream, so nothing here writes stamps to check it against.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CLIENT_TTFT_ERROR_MS", "fairness_note"]

CLIENT_TTFT_ERROR_MS: dict[str, tuple[float, float]] = {
    # dialect_clock.py --rounds 10 (320 requests per path at N=32), litellm 1.110.2
    "direct": (0.1, 4.3),
    "anthropic": (0.1, 0.9),
    # --rounds 4 (128 requests at N=32) on a machine at load ~17 (2 cores), where the
    # same run measured direct 0.9/6.4 and anthropic 0.3/6.9; 0.3 ms p50 at 1 stream.
    "gemini": (1.1, 11.4),
    # litellm on the call clock (the fallback, and every litellm row without a
    # clock column): Anthropic dialect; 1.6 ms at 1 stream, 1.1 s at 128
    "litellm": (54.0, 145.0),
    # litellm on the socket clock (harness/providers/socket_stamps.py), Anthropic
    # dialect, the worse of two runs (--rounds 3 and 4; the other: 2.7 / 47.3;
    # OpenAI dialect 2.5-14.7 / 43-49) on a machine at load average ~16-19 on 2
    # cores, where direct measured 0.2-1.0 / 10 in the same runs; 0.3-0.4 ms p50
    # at 1 stream, 53 / 257 ms at 128 (the call clock there: 12 s p50)
    "litellm/socket": (20.8, 104.6),
}
"""Path → (p50, p99) client TTFT error in ms at 32 streams (benchmarks/dialect_clock.py).

A path is the row's transport, with ``/socket`` for litellm on the socket clock."""

UNMEASURED: dict[str, str] = {
    "bedrock/": "bound not measured: the simulator does not speak AWS event-stream",
}
"""Model prefix → why its path's bound is not in :data:`CLIENT_TTFT_ERROR_MS`."""

# Clients that time a request from its write and each event from its read.
_LEAN = frozenset({"direct", "anthropic", "gemini"})


def _path(transport: str, clock: Any) -> str:
    """The bound's key: litellm's socket clock is a path of its own."""
    return f"{transport}/socket" if transport == "litellm" and clock == "socket" else transport


def fairness_note(rows: Any) -> str | None:
    """A note when the run's providers were measured by paths of different client error.

    ``rows``: the run's rows (a DataFrame with ``provider`` and ``transport``);
    warm-ups and cache hits' copies count like any row, since they name the
    provider's path all the same. None when every provider used one kind of path.
    """
    if rows is None or "transport" not in rows or "provider" not in rows or not len(rows):
        return None
    columns = ["provider", "transport"] + [c for c in ("clock", "model") if c in rows]
    paths = rows[columns].drop_duplicates()
    by_provider: dict[str, set[tuple[str, Any, str]]] = {}
    for row in paths.to_dict("records"):
        if any(row[k] is None or row[k] != row[k] for k in ("provider", "transport")):
            continue  # None or NaN: a row that names no path
        clock = row.get("clock")
        clock = clock if isinstance(clock, str) else None
        model = row.get("model")
        by_provider.setdefault(str(row["provider"]), set()).add(
            (str(row["transport"]), clock, model if isinstance(model, str) else "")
        )
    kinds = {t in _LEAN for ps in by_provider.values() for t, _, _ in ps}
    if len(kinds) < 2:
        return None
    parts = []
    for provider in sorted(by_provider):
        quoted_paths = {}
        for transport, clock, model in by_provider[provider]:
            bound = CLIENT_TTFT_ERROR_MS.get(_path(transport, clock))
            quoted = f"p50 {bound[0]:g} / p99 {bound[1]:g} ms" if bound else "not measured"
            for prefix, why in UNMEASURED.items():
                if model.startswith(prefix):
                    quoted = why
            on = f" on the {clock} clock" if clock else ""
            quoted_paths[f"{provider} by {transport}{on}"] = quoted
        parts += [f"{name} ({quoted})" for name, quoted in sorted(quoted_paths.items())]
    return (
        "providers were timed by clients of different error: "
        + ", ".join(parts)
        + " (client TTFT error at 32 concurrent streams, measured by benchmarks/dialect_clock.py;"
        " litellm's call clock also grows with concurrency): compare their TTFT and ITL with"
        " that margin"
    )
