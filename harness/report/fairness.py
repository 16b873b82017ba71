"""Whether a run's providers were timed by clients of comparable error.

Each row's ``transport`` column says which client measured it. The direct
(OpenAI-compatible), native Anthropic and native Gemini clients stamp the
request when it is written and each event when its bytes are read; litellm's clock starts before
litellm prepares the request and stamps chunks after litellm has parsed them,
so its TTFT error grows with the number of concurrent streams. A run that
compares providers measured by both kinds says so, with each path's measured
bound.

The bounds are constants, measured by ``benchmarks/dialect_clock.py`` on the
development machine (2 cores, loopback simulator, TTFT 120 ms, ITL 15 ms, 64
tokens, 32 concurrent streams): the client's TTFT error, p50 and p99 in ms,
against the simulator's own write stamps. They are an order of magnitude, not
this run's error: the machine and the load change them.
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
    "litellm": (54.0, 145.0),  # Anthropic dialect; 1.6 ms at 1 stream, 1.1 s at 128
}
"""Transport → (p50, p99) client TTFT error in ms at 32 streams (benchmarks/dialect_clock.py)."""

# Clients that time a request from its write and each event from its read.
_LEAN = frozenset({"direct", "anthropic", "gemini"})


def fairness_note(rows: Any) -> str | None:
    """A note when the run's providers were measured by paths of different client error.

    ``rows``: the run's rows (a DataFrame with ``provider`` and ``transport``);
    warm-ups and cache hits' copies count like any row, since they name the
    provider's path all the same. None when every provider used one kind of path.
    """
    if rows is None or "transport" not in rows or "provider" not in rows or not len(rows):
        return None
    paths = rows[["provider", "transport"]].dropna().drop_duplicates()
    by_provider: dict[str, list[str]] = {}
    for provider, transport in paths.itertuples(index=False):
        by_provider.setdefault(str(provider), []).append(str(transport))
    kinds = {t in _LEAN for ts in by_provider.values() for t in ts}
    if len(kinds) < 2:
        return None
    parts = []
    for provider in sorted(by_provider):
        for transport in sorted(by_provider[provider]):
            bound = CLIENT_TTFT_ERROR_MS.get(transport)
            quoted = f"p50 {bound[0]:g} / p99 {bound[1]:g} ms" if bound else "not measured"
            parts.append(f"{provider} by {transport} ({quoted})")
    return (
        "providers were timed by clients of different error: "
        + ", ".join(parts)
        + " (client TTFT error at 32 concurrent streams, measured by benchmarks/dialect_clock.py;"
        " litellm's also grows with concurrency): compare their TTFT and ITL with that margin"
    )
