"""Request cost from token usage and a price: pure functions, no network, no litellm import.

Prices come from a config override (:class:`PricingOverride`, ``providers[].pricing``)
or from litellm's bundled price table, which callers pass in as ``litellm.model_cost``
(importing litellm takes seconds, so this module never does; tests pass small dicts).

Usage semantics are OpenAI's, which is also how litellm normalises other providers:

* ``input_tokens`` (``prompt_tokens``) INCLUDES cached reads and cache writes, so the
  uncached part is ``input - cached - cache_write``;
* ``output_tokens`` (``completion_tokens``) INCLUDES reasoning tokens, so the visible
  part is ``output - reasoning``.

Only standard-tier text-token prices are modelled. Not modelled: long-context tiers
(``*_above_200k_tokens`` etc.), batch/flex/priority tiers, 1-hour cache writes, audio and
image tokens, per-query search fees and regional uplifts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

PER_MTOK = 1_000_000
"""Tokens per million: ``per_mtok`` prices divided by this are per-token prices."""

SAMPLE_SPEC_KEY = "sample_spec"
"""litellm's table documents its own schema under this key; it is not a model."""

_TOKEN_FIELDS = (
    "input_per_mtok",
    "output_per_mtok",
    "cached_input_per_mtok",
    "cache_write_per_mtok",
    "reasoning_per_mtok",
)


MAX_RATE = 1_000_000.0
"""Largest price a config may state (USD per million tokens, or per second): a typo
such as ``1e308`` would otherwise make every estimate and total infinite."""


def _rate_field(description: str) -> Any:
    return Field(default=None, ge=0, le=MAX_RATE, allow_inf_nan=False, description=description)


class PricingOverride(BaseModel):
    """A provider's own prices (``providers[].pricing``); replaces litellm's table entirely.

    Either per-token prices in USD per million tokens, or ``per_second`` for self-hosted
    endpoints (e.g. a GPU's hourly price / 3600), billed as ``per_second * e2e_s``.
    Fields left out are unknown; they are not filled in from litellm's table.
    """

    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float | None = _rate_field("USD per million uncached input tokens")
    output_per_mtok: float | None = _rate_field("USD per million output tokens")
    cached_input_per_mtok: float | None = _rate_field(
        "USD per million cached input tokens (cache reads); default: the input price"
    )
    cache_write_per_mtok: float | None = _rate_field(
        "USD per million input tokens written to the cache; default: the input price"
    )
    reasoning_per_mtok: float | None = _rate_field(
        "USD per million reasoning tokens; default: the output price"
    )
    per_second: float | None = _rate_field(
        "USD per second of end-to-end request time (self-hosted endpoints)"
    )

    @model_validator(mode="after")
    def _one_kind_of_price(self) -> PricingOverride:
        token_fields = [name for name in _TOKEN_FIELDS if getattr(self, name) is not None]
        if self.per_second is not None and token_fields:
            raise ValueError(
                f"per_second cannot be combined with per-token prices ({', '.join(token_fields)})"
            )
        if self.per_second is None and not token_fields:
            raise ValueError(
                "pricing needs at least one price: per_second or " + ", ".join(_TOKEN_FIELDS)
            )
        return self


@dataclass(frozen=True)
class Price:
    """Per-token USD rates of one model (None: unknown), or a per-second rate.

    ``source`` is ``"override"``, ``"litellm:<table key>"`` or ``"none"``.
    """

    input: float | None = None
    output: float | None = None
    cached_input: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None
    per_second: float | None = None
    source: str = "none"

    @property
    def known(self) -> bool:
        """True when any rate is known; an unknown price never produces a cost of 0."""
        return any(
            rate is not None
            for rate in (
                self.input,
                self.output,
                self.cached_input,
                self.cache_write,
                self.reasoning,
                self.per_second,
            )
        )


UNKNOWN_PRICE = Price()
"""The price of a model that is neither overridden nor in the table."""


@dataclass(frozen=True)
class Usage:
    """Token counts of one response (OpenAI semantics, see the module doc) and its E2E time.

    None means "not reported". For the detail counts (cached, cache writes, reasoning)
    that is read as 0; a missing ``input_tokens`` or ``output_tokens`` makes the cost unknown.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    e2e_s: float | None = None


def _provider_matches(entry: Mapping[str, Any], prefix: str) -> bool:
    provider = entry.get("litellm_provider")
    if not isinstance(provider, str):
        return True  # no provider recorded: litellm treats that as a wildcard too
    if provider == prefix:
        return True
    # litellm's families: vertex_ai -> vertex_ai-language-models etc., bedrock -> bedrock_converse
    return any(
        prefix.startswith(family) and provider.startswith(family)
        for family in ("vertex_ai", "bedrock", "fireworks_ai")
    )


def resolve_table_key(model: str, model_cost: Mapping[str, Any]) -> str | None:
    """The key of ``model`` in litellm's price table, or None when it has no entry.

    Tried in order:

    1. the model string as given (``openai/gpt-4o-mini``, ``azure/gpt-4o``, ``gpt-4o``);
    2. the string without its first ``/`` segment (``openai/gpt-4o-mini`` → ``gpt-4o-mini``),
       accepted only when that entry's ``litellm_provider`` is the stripped prefix. This is
       what ``litellm.get_llm_provider`` strips: exactly one leading provider segment
       (``openrouter/openai/x`` → ``openai/x``, never ``x``). The provider check is litellm's
       too: ``hosted_vllm/gpt-4o-mini`` is a self-hosted model, not OpenAI's, so it is unknown.

    Not tried (litellm does some of these; we prefer "unknown" to a guess): case-insensitive
    matches, dropping date suffixes, region prefixes, wildcard keys.
    """
    if model == SAMPLE_SPEC_KEY:
        return None
    entry = model_cost.get(model)
    if isinstance(entry, Mapping):
        return model
    prefix, sep, rest = model.partition("/")
    if sep and rest and rest != SAMPLE_SPEC_KEY:
        entry = model_cost.get(rest)
        if isinstance(entry, Mapping) and _provider_matches(entry, prefix):
            return rest
    return None


def _table_rate(entry: Mapping[str, Any], key: str) -> float | None:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _per_token(per_mtok: float | None) -> float | None:
    return None if per_mtok is None else per_mtok / PER_MTOK


def resolve_price(
    model: str, override: PricingOverride | None, model_cost: Mapping[str, Any]
) -> Price:
    """The price of ``model``: the override if given, else litellm's table entry, else unknown.

    Table keys used: ``input_cost_per_token``, ``output_cost_per_token``,
    ``cache_read_input_token_cost``, ``cache_creation_input_token_cost`` and
    ``output_cost_per_reasoning_token``. Most entries have no reasoning rate; reasoning
    tokens are then billed as output tokens, which is how OpenAI bills them.
    The table's ``cost_per_second`` (Bedrock provisioned throughput) is not used.
    """
    if override is not None:
        return Price(
            input=_per_token(override.input_per_mtok),
            output=_per_token(override.output_per_mtok),
            cached_input=_per_token(override.cached_input_per_mtok),
            cache_write=_per_token(override.cache_write_per_mtok),
            reasoning=_per_token(override.reasoning_per_mtok),
            per_second=override.per_second,
            source="override",
        )
    key = resolve_table_key(model, model_cost)
    if key is None:
        return UNKNOWN_PRICE
    entry: Mapping[str, Any] = model_cost[key]
    price = Price(
        input=_table_rate(entry, "input_cost_per_token"),
        output=_table_rate(entry, "output_cost_per_token"),
        cached_input=_table_rate(entry, "cache_read_input_token_cost"),
        cache_write=_table_rate(entry, "cache_creation_input_token_cost"),
        reasoning=_table_rate(entry, "output_cost_per_reasoning_token"),
        source=f"litellm:{key}",
    )
    # An entry without any token price (image, video, per-second models) prices nothing.
    return price if price.known else UNKNOWN_PRICE


def _term(tokens: int, rate: float | None) -> float | None:
    """Cost of ``tokens`` at ``rate``; None when tokens must be billed at an unknown rate."""
    if tokens == 0:
        return 0.0
    return None if rate is None else tokens * rate


def cost(usage: Usage, price: Price) -> float | None:
    """USD cost of one response; None when it cannot be known (never 0 for "no price").

    Per-token prices (OpenAI-style usage, see the module doc)::

        uncached  = input - cached - cache_write      at the input rate
        cached                                        at the cached rate (else the input rate)
        cache_write                                   at the cache-write rate (else the input rate)
        visible   = output - reasoning                at the output rate
        reasoning                                     at the reasoning rate (else the output rate)

    A per-second price costs ``per_second * e2e_s`` whatever the tokens.

    None when: the price is unknown; ``per_second`` pricing without ``e2e_s``;
    ``input_tokens`` or ``output_tokens`` not reported; a non-zero part whose rate is
    unknown; or inconsistent usage (negative counts, cached + cache writes > input,
    reasoning > output), which cannot be priced as reported.
    """
    if not price.known:
        return None
    if price.per_second is not None:
        if usage.e2e_s is None:
            return None
        return price.per_second * usage.e2e_s
    if usage.input_tokens is None or usage.output_tokens is None:
        return None
    cached = usage.cached_input_tokens or 0
    cache_write = usage.cache_write_tokens or 0
    reasoning = usage.reasoning_tokens or 0
    uncached = usage.input_tokens - cached - cache_write
    visible = usage.output_tokens - reasoning
    if min(uncached, cached, cache_write, visible, reasoning) < 0:
        return None
    terms = (
        _term(uncached, price.input),
        _term(cached, price.cached_input if price.cached_input is not None else price.input),
        _term(cache_write, price.cache_write if price.cache_write is not None else price.input),
        _term(visible, price.output),
        _term(reasoning, price.reasoning if price.reasoning is not None else price.output),
    )
    total = 0.0
    for term in terms:
        if term is None:
            return None
        total += term
    return total


def price_table_identity(model_cost: Mapping[str, Any], litellm_version: str) -> dict[str, Any]:
    """Identify a price table, so that a cost change can be told apart from a price change.

    Returns ``{"litellm_version", "sha256", "entries"}``: the sha256 of the table's canonical
    JSON (sorted keys, no whitespace) and the number of models (litellm's ``sample_spec``
    schema entry is hashed but not counted).
    """
    canonical = json.dumps(
        model_cost, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return {
        "litellm_version": litellm_version,
        "sha256": hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        "entries": sum(1 for key in model_cost if key != SAMPLE_SPEC_KEY),
    }


def blended_per_mtok(
    price: Price, input_weight: float = 3, output_weight: float = 1
) -> float | None:
    """One USD-per-million-tokens number: the weighted mean of input and output prices.

    The default 3:1 input:output weighting is what public leaderboards use. None when
    either price is unknown or the price is per second.
    """
    if input_weight < 0 or output_weight < 0 or input_weight + output_weight <= 0:
        raise ValueError("weights must be non-negative and not both zero")
    if price.per_second is not None or price.input is None or price.output is None:
        return None
    blended = (input_weight * price.input + output_weight * price.output) / (
        input_weight + output_weight
    )
    return blended * PER_MTOK


def estimate_cost_range(
    price: Price, input_tokens: int, max_output_tokens: int
) -> tuple[float, float] | None:
    """(low, high) USD cost of one request before sending it, for dry runs.

    All input is billed as uncached. Low: one output token (at most ``max_output_tokens``).
    High: ``max_output_tokens`` output tokens at the higher of the output and reasoning
    rates, since reasoning tokens count toward the output limit. None when the price is
    unknown or per second (the time is not known in advance).
    """
    if input_tokens < 0 or max_output_tokens < 0:
        raise ValueError("token counts must be non-negative")
    if price.per_second is not None:
        return None
    low = cost(Usage(input_tokens, min(1, max_output_tokens)), price)
    output_rate = price.output
    if price.reasoning is not None and output_rate is not None:
        output_rate = max(output_rate, price.reasoning)
    high = cost(
        Usage(input_tokens, max_output_tokens), Price(input=price.input, output=output_rate)
    )
    if low is None or high is None:
        return None
    return low, high


__all__ = [
    "PER_MTOK",
    "UNKNOWN_PRICE",
    "Price",
    "PricingOverride",
    "Usage",
    "blended_per_mtok",
    "cost",
    "estimate_cost_range",
    "price_table_identity",
    "resolve_price",
    "resolve_table_key",
]


def price_row(row: dict[str, Any], price: Price) -> None:
    """Add ``cost_usd`` (None when the price or the usage is unknown) and ``price_source``
    to a transport's row (the pipeline prices rows; transports know no prices)."""
    usage = Usage(
        input_tokens=row.get("input_tokens"),
        output_tokens=row.get("output_tokens"),
        cached_input_tokens=row.get("cached_input_tokens"),
        cache_write_tokens=row.get("cache_write_tokens"),
        reasoning_tokens=row.get("reasoning_tokens"),
        e2e_s=row.get("e2e_s"),
    )
    row["cost_usd"] = cost(usage, price) if row.get("status") == "ok" else None
    row["price_source"] = price.source
    # The price used, so any summary can be recomputed from the rows alone.
    row["price_input_per_mtok"] = None if price.input is None else price.input * 1e6
    row["price_output_per_mtok"] = None if price.output is None else price.output * 1e6
