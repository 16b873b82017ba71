"""``kind: prompt_cache``: one long shared prefix, varying suffixes, sent cold then warm.

Each of ``prefixes`` prefixes is a synthetic text of ``prefix_tokens`` tokens
(``o200k_base``, seeded), sent as the system message (or a first user message) before a
suffix. Per prefix, the first suffix is sent **cold**; every other suffix is **warm**: it
names the cold request as its predecessor (``RequestSpec.after``), so the scheduler sends
it only once the cold row exists, in every load pattern and at any concurrency
(:mod:`harness.run.chains`); warm requests of one prefix then run side by side.

A prefix begins with a **salt** of four random words drawn when its cold request is
sent (:func:`prepare`) and kept in the row (``cache_salt``); its warm requests reuse it
from the cold row, also after a resume. So a cold request is cold: neither an earlier run
within the provider's cache lifetime, nor a repeat, nor the harness's own warm-up request
(which draws its own salt) has sent that prefix before.

Columns: ``cache_role`` (cold/warm), ``cache_prefix``, ``cache_salt``,
``cache_expected_tokens`` (0 cold; the prefix's tokens as the harness counts them warm),
``cache_hit`` (the provider reported cached input tokens > 0; None when it reports no
count), ``cache_mismatch`` (a cold request that reports cached tokens, or a warm one whose
reported count is off the expected by more than ``tolerance`` of it; None without a
count). The reported count is the row's ``cached_input_tokens`` (OpenAI
``prompt_tokens_details.cached_tokens``, Anthropic ``cache_read_input_tokens``, or
litellm's normalised usage). The summary (:mod:`harness.report.workloads`) reports TTFT
cold vs warm, the hit rate and the effective $ per request against the list price.
"""

from __future__ import annotations

import dataclasses
import random
import secrets
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.request import RequestSpec
from harness.suites.base import MAX_COUNT, MAX_TOKENS, SuiteConfig
from harness.suites.chat import refuse_unchained_load

SALT_WORDS = 4
# One o200k token each with a leading space, and "the" one without: a prefix of n
# words is n tokens (checked by the tests against the tokenizer).
_FIRST_WORD = "the"


def _vocabulary() -> tuple[str, ...]:
    from harness.cost.tokens import _WORDS

    return tuple(sorted(set(_WORDS)))


class PromptCacheSuite(SuiteConfig):
    """Cold-then-warm requests over shared prefixes (see the module docstring)."""

    kind: Literal["prompt_cache"] = "prompt_cache"
    max_tokens: int = Field(default=32, ge=1, le=MAX_TOKENS)
    prefix_tokens: int = Field(ge=16, le=200_000, description="shared prefix length, tokens")
    prefixes: int = Field(default=1, ge=1, le=1000, description="distinct prefixes")
    prefix_role: Literal["system", "user"] = "system"
    suffixes: list[str] = Field(min_length=2, description="the first is sent cold, others warm")
    repeats: int = Field(default=1, ge=1, le=MAX_COUNT, description="each with fresh prefixes")
    tolerance: float = Field(
        default=0.15, ge=0, le=1, description="relative cached-token error before a mismatch"
    )
    cache_control: bool = Field(
        default=False,
        description="mark the prefix as a cache_control breakpoint (Anthropic needs one)",
    )
    seed: int = 0

    @model_validator(mode="after")
    def _checks(self) -> PromptCacheSuite:
        refuse_unchained_load(self)
        if self.system is not None:
            raise ValueError("kind prompt_cache: the prefix is the system prompt; drop 'system'")
        if any(not s.strip() for s in self.suffixes):
            raise ValueError("suffixes must not be empty")
        return self


def prefix_body(n_tokens: int, seed: str) -> list[str]:
    """The seeded words after the salt: ``n_tokens - 1 - SALT_WORDS`` of them."""
    rng = random.Random(seed)
    words = _vocabulary()
    return [rng.choice(words) for _ in range(n_tokens - 1 - SALT_WORDS)]


def new_salt() -> list[str]:
    """Four random words: about 2**22 prefixes apart (``secrets``: never the same run)."""
    words = _vocabulary()
    return [secrets.choice(words) for _ in range(SALT_WORDS)]


def _prefix_text(salt: list[str], body: list[str]) -> str:
    return " ".join([_FIRST_WORD, *salt, *body])


def _messages(suite_role: str, prefix: str, suffix: str, cache_control: bool) -> list[Any]:
    content: Any = prefix
    if cache_control:
        content = [{"type": "text", "text": prefix, "cache_control": {"type": "ephemeral"}}]
    return [{"role": suite_role, "content": content}, {"role": "user", "content": suffix}]


def plan(suite: PromptCacheSuite, provider: str) -> Iterator[RequestSpec]:
    """Per repeat: every prefix's cold request, then the warm ones (prefix-major).

    The planned prefix carries a stand-in salt; :func:`prepare` draws the real one.
    """
    for phase in suite.phases():
        for repeat in range(suite.repeats):
            requests = []
            for p in range(suite.prefixes):
                body = prefix_body(suite.prefix_tokens, f"{suite.seed}:{p}:{repeat}")
                prefix = _prefix_text([_FIRST_WORD] * SALT_WORDS, body)
                for j, suffix in enumerate(suite.suffixes):
                    cold = j == 0
                    requests.append(
                        RequestSpec(
                            suite=suite.name,
                            suite_kind=suite.kind,
                            case_id=f"p{p}/{'cold' if cold else f'warm{j}'}",
                            repeat=repeat,
                            provider=provider,
                            messages=_messages(
                                suite.prefix_role, prefix, suffix, suite.cache_control
                            ),
                            max_tokens=suite.max_tokens,
                            load_level=phase.label,
                            after=None if cold else f"p{p}/cold",
                            meta={
                                "prefix": f"p{p}",
                                "role": "cold" if cold else "warm",
                                "body": body,
                                "suffix": suffix,
                                "prefix_role": suite.prefix_role,
                                "cache_control": suite.cache_control,
                                "tolerance": suite.tolerance,
                            },
                        )
                    )
            yield from sorted(requests, key=lambda r: r.meta["role"] != "cold")


def prepare(request: RequestSpec) -> RequestSpec:
    """The request with its prefix's salt: drawn for a cold request (and a warm-up),
    the cold row's for a warm one. Idempotent."""
    from harness.cost.tokens import count_tokens

    meta = request.meta
    previous = request.previous
    # Already prepared (the scheduler prepares before its estimates, the sender again):
    # keep the salt drawn then.
    salt = meta.get("salt") or (previous.get("cache_salt") if previous is not None else None)
    words = salt.split() if isinstance(salt, str) and salt else new_salt()
    prefix = _prefix_text(words, meta["body"])
    return dataclasses.replace(
        request,
        messages=_messages(meta["prefix_role"], prefix, meta["suffix"], meta["cache_control"]),
        meta={**meta, "salt": " ".join(words), "prefix_count": count_tokens(prefix)},
    )


def score(row: dict[str, Any], request: RequestSpec) -> dict[str, Any]:
    """The cache columns of one row (see the module docstring)."""
    meta = request.meta
    warm = meta["role"] == "warm"
    expected = int(meta["prefix_count"]) if warm else 0
    reported = row.get("cached_input_tokens") if row.get("status") == "ok" else None
    out: dict[str, Any] = {
        "cache_role": meta["role"],
        "cache_prefix": meta["prefix"],
        "cache_salt": meta["salt"],
        "cache_expected_tokens": expected,
        "cache_hit": None,
        "cache_mismatch": None,
    }
    if isinstance(reported, int):
        out["cache_hit"] = reported > 0
        if warm:
            out["cache_mismatch"] = abs(reported - expected) > meta["tolerance"] * expected
        else:
            out["cache_mismatch"] = reported > 0
    return out
