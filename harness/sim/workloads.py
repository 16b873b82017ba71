"""What the simulator knows of conversations and prompt caching (both dialects).

- **Prefix cache** (profile ``prefix_cache``): the server remembers, per model, every
  run of leading messages (role and text) a request began with. A later request whose
  first k messages equal an earlier request's first k reports the words of those k
  messages as cached (OpenAI ``usage.prompt_tokens_details.cached_tokens``, Anthropic
  ``cache_read_input_tokens``) and, with ``cache_ttft_ms``, starts after that TTFT
  instead of ``ttft_ms``. Message-granular on purpose: a shared system prompt or
  document is cached whole, a varying suffix never, so tests can work the numbers by hand
  (one word is one token, as everywhere in the simulator).
- **Scripted replies** (profile ``replies``): when the last user message contains a key
  (case-insensitive), the answer is that key's text, so a conversation's answers, and
  hence its per-turn scores, are known in advance.
- **What was received** (``GET /sim/received``): the model and messages of each request,
  in arrival order, cleared when read: lets a test see on the wire what a turn carried.
"""

from __future__ import annotations

import collections
import hashlib
from typing import Any

from harness.sim.profile import SimProfile

_MAX_PREFIXES = 200_000  # forget everything past this (a long benchmark must not grow forever)
_MAX_RECEIVED = 1_000


def content_text(content: Any) -> str:
    """A message's text: a string, or the text of its content parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


class Workloads:
    """One server's prefix cache and record of received requests."""

    def __init__(self) -> None:
        self._seen: set[bytes] = set()
        self.received: collections.deque[dict[str, Any]] = collections.deque(maxlen=_MAX_RECEIVED)

    def record(self, model: str, messages: list[tuple[str, str]]) -> None:
        """Remember what a request carried, for ``/sim/received``."""
        self.received.append(
            {"model": model, "messages": [{"role": r, "content": t} for r, t in messages]}
        )

    def take_received(self) -> list[dict[str, Any]]:
        out = list(self.received)
        self.received.clear()
        return out

    def cached_tokens(
        self, profile: SimProfile, model: str, messages: list[tuple[str, str]]
    ) -> int:
        """Words of the longest leading run of ``messages`` seen before (0 without
        ``prefix_cache``); stores every leading run of this request."""
        if not profile.prefix_cache:
            return 0
        if len(self._seen) > _MAX_PREFIXES:
            self._seen.clear()
        digest = hashlib.sha256(model.encode())
        cached = words = 0
        hit = True
        for role, text in messages:
            digest.update(b"\0" + role.encode() + b"\0" + text.encode())
            key = digest.copy().digest()
            words += len(text.split())
            hit = hit and key in self._seen
            if hit:
                cached = words
            self._seen.add(key)
        return cached


def scripted_reply(profile: SimProfile, messages: list[tuple[str, str]]) -> list[str] | None:
    """The scripted answer's words for the last user message, or None."""
    if not profile.replies:
        return None
    last = next((text for role, text in reversed(messages) if role == "user"), "")
    lowered = last.lower()
    for key, reply in profile.replies.items():
        if key.lower() in lowered:
            return reply.split() or None
    return None


def with_cache(profile: SimProfile, cached: int) -> SimProfile:
    """The profile a request with ``cached`` tokens is served by (its TTFT)."""
    if cached and profile.cache_ttft_ms is not None:
        return profile.model_copy(update={"ttft_ms": profile.cache_ttft_ms})
    return profile
