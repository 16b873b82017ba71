"""Cost from usage and price, against small hand-written tables and hand-worked arithmetic."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from harness.cost.pricing import (
    UNKNOWN_PRICE,
    Price,
    PricingOverride,
    Usage,
    blended_per_mtok,
    cost,
    estimate_cost_range,
    price_table_identity,
    resolve_price,
    resolve_table_key,
)

REL = 1e-12

# Shaped like litellm.model_cost (values copied from litellm 1.110.2 where a model is real).
TABLE: dict[str, Any] = {
    "sample_spec": {
        "input_cost_per_token": 0.0,
        "litellm_provider": "one of https://docs.litellm.ai/docs/providers",
        "max_input_tokens": "max input tokens, if the provider specifies it",
    },
    "gpt-4o-mini": {
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": 1.5e-07,
        "output_cost_per_token": 6e-07,
        "cache_read_input_token_cost": 7.5e-08,
        "input_cost_per_token_batches": 7.5e-08,  # other tiers are ignored
    },
    "azure/gpt-4o-mini": {
        "litellm_provider": "azure",
        "input_cost_per_token": 1.65e-07,
        "output_cost_per_token": 6.6e-07,
    },
    "claude-sonnet-4-5": {
        "litellm_provider": "anthropic",
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "cache_read_input_token_cost": 3e-07,
        "cache_creation_input_token_cost": 3.75e-06,
    },
    "dashscope/qwen-turbo": {
        "litellm_provider": "dashscope",
        "input_cost_per_token": 5e-08,
        "output_cost_per_token": 2e-07,
        "output_cost_per_reasoning_token": 5e-07,
    },
    "plain-model": {  # no cached or cache-write rate
        "litellm_provider": "openai",
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 2e-06,
    },
    "dall-e-3": {
        "litellm_provider": "openai",
        "mode": "image_generation",
        "output_cost_per_image": 0.04,
    },
    "free-model": {
        "litellm_provider": "openai",
        "input_cost_per_token": 0,
        "output_cost_per_token": 0,
    },
}


def table_cost(model: str, usage: Usage) -> float | None:
    return cost(usage, resolve_price(model, None, TABLE))


# --- resolution -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("openai/gpt-4o-mini", "gpt-4o-mini"),  # provider prefix stripped
        ("azure/gpt-4o-mini", "azure/gpt-4o-mini"),  # the full string wins
        ("dashscope/qwen-turbo", "dashscope/qwen-turbo"),
        ("hosted_vllm/gpt-4o-mini", None),  # self-hosted: not OpenAI's price
        ("anthropic/gpt-4o-mini", None),  # prefix names another provider
        ("openrouter/openai/gpt-4o-mini", None),  # one prefix is stripped, never two
        ("gpt-4o", None),
        ("sample_spec", None),  # litellm's schema documentation, not a model
        ("openai/sample_spec", None),
        ("", None),
    ],
)
def test_table_key_resolution(model: str, key: str | None) -> None:
    assert resolve_table_key(model, TABLE) == key


def test_a_table_price_names_its_key_and_keeps_per_token_rates() -> None:
    assert resolve_price("openai/gpt-4o-mini", None, TABLE) == Price(
        input=1.5e-07,
        output=6e-07,
        cached_input=7.5e-08,
        cache_write=None,
        reasoning=None,
        per_second=None,
        source="litellm:gpt-4o-mini",
    )


def test_an_unknown_model_costs_none_never_zero() -> None:
    price = resolve_price("openai/no-such-model", None, TABLE)
    assert price == UNKNOWN_PRICE
    assert price.source == "none"
    assert not price.known
    assert cost(Usage(input_tokens=1000, output_tokens=500), price) is None
    assert cost(Usage(input_tokens=0, output_tokens=0), price) is None


def test_a_table_entry_without_token_prices_is_unknown() -> None:
    price = resolve_price("dall-e-3", None, TABLE)
    assert price.source == "none"
    assert cost(Usage(input_tokens=10, output_tokens=0), price) is None


def test_a_free_model_costs_zero_because_the_table_says_so() -> None:
    price = resolve_price("free-model", None, TABLE)
    assert price.source == "litellm:free-model"
    assert cost(Usage(input_tokens=1000, output_tokens=500), price) == 0.0


# --- cost: usage shapes -----------------------------------------------------------------------


def test_plain_usage() -> None:
    # 1000 * 1.5e-07 = 1.5e-04 input; 500 * 6e-07 = 3.0e-04 output; total 4.5e-04
    got = table_cost("openai/gpt-4o-mini", Usage(input_tokens=1000, output_tokens=500))
    assert got == pytest.approx(4.5e-04, rel=REL)


def test_cached_tokens_are_part_of_input_and_billed_at_the_cached_rate() -> None:
    # input 1000 includes 400 cached: 600 * 1.5e-07 = 9.0e-05; 400 * 7.5e-08 = 3.0e-05
    # output 500 * 6e-07 = 3.0e-04; total 9e-05 + 3e-05 + 3e-04 = 4.2e-04
    usage = Usage(input_tokens=1000, output_tokens=500, cached_input_tokens=400)
    assert table_cost("gpt-4o-mini", usage) == pytest.approx(4.2e-04, rel=REL)


def test_cached_tokens_without_a_cached_rate_are_billed_as_input() -> None:
    # plain-model has no cached rate: 1000 * 1e-06 = 1e-03; 500 * 2e-06 = 1e-03; total 2e-03
    usage = Usage(input_tokens=1000, output_tokens=500, cached_input_tokens=400)
    assert table_cost("plain-model", usage) == pytest.approx(2e-03, rel=REL)


def test_cache_writes_are_billed_at_the_cache_write_rate() -> None:
    # input 1000 = 500 uncached + 300 cached + 200 written
    #   500 * 3e-06 = 1.5e-03;  300 * 3e-07 = 9.0e-05;  200 * 3.75e-06 = 7.5e-04
    # output 500 * 1.5e-05 = 7.5e-03
    # total 1.5e-03 + 9e-05 + 7.5e-04 + 7.5e-03 = 9.84e-03
    usage = Usage(
        input_tokens=1000, output_tokens=500, cached_input_tokens=300, cache_write_tokens=200
    )
    assert table_cost("anthropic/claude-sonnet-4-5", usage) == pytest.approx(9.84e-03, rel=REL)


def test_cache_writes_without_a_rate_are_billed_as_input() -> None:
    # gpt-4o-mini has no cache-write rate: 800 * 1.5e-07 + 200 * 1.5e-07 = 1.5e-04
    # output 500 * 6e-07 = 3e-04; total 4.5e-04 (same as plain usage)
    usage = Usage(input_tokens=1000, output_tokens=500, cache_write_tokens=200)
    assert table_cost("gpt-4o-mini", usage) == pytest.approx(4.5e-04, rel=REL)


def test_reasoning_without_a_reasoning_rate_is_billed_as_output() -> None:
    # output 500 includes 100 reasoning: 400 * 6e-07 + 100 * 6e-07 = 3e-04
    # input 1000 * 1.5e-07 = 1.5e-04; total 4.5e-04 (as OpenAI bills it)
    usage = Usage(input_tokens=1000, output_tokens=500, reasoning_tokens=100)
    assert table_cost("gpt-4o-mini", usage) == pytest.approx(4.5e-04, rel=REL)


def test_reasoning_with_a_reasoning_rate() -> None:
    # input 1000 * 5e-08 = 5e-05
    # output 500 includes 100 reasoning: 400 * 2e-07 = 8e-05; 100 * 5e-07 = 5e-05
    # total 5e-05 + 8e-05 + 5e-05 = 1.8e-04
    usage = Usage(input_tokens=1000, output_tokens=500, reasoning_tokens=100)
    assert table_cost("dashscope/qwen-turbo", usage) == pytest.approx(1.8e-04, rel=REL)


def test_every_part_at_once() -> None:
    # claude: input 2000 = 1000 uncached + 600 cached + 400 written; output 300 incl. 100 reasoning
    #   1000 * 3e-06 = 3e-03;  600 * 3e-07 = 1.8e-04;  400 * 3.75e-06 = 1.5e-03
    #   200 * 1.5e-05 = 3e-03; 100 * 1.5e-05 = 1.5e-03 (no reasoning rate: output rate)
    #   total 3e-03 + 1.8e-04 + 1.5e-03 + 3e-03 + 1.5e-03 = 9.18e-03
    usage = Usage(2000, 300, cached_input_tokens=600, cache_write_tokens=400, reasoning_tokens=100)
    assert table_cost("claude-sonnet-4-5", usage) == pytest.approx(9.18e-03, rel=REL)


def test_missing_detail_counts_are_zero_but_missing_totals_are_unknown() -> None:
    price = resolve_price("gpt-4o-mini", None, TABLE)
    assert cost(Usage(1000, 500, None, None, None), price) == pytest.approx(4.5e-04, rel=REL)
    assert cost(Usage(input_tokens=None, output_tokens=None), price) is None
    assert cost(Usage(input_tokens=1000, output_tokens=None), price) is None
    assert cost(Usage(input_tokens=None, output_tokens=500), price) is None


@pytest.mark.parametrize(
    "usage",
    [
        Usage(input_tokens=100, output_tokens=10, cached_input_tokens=101),
        Usage(input_tokens=100, output_tokens=10, cached_input_tokens=60, cache_write_tokens=41),
        Usage(input_tokens=100, output_tokens=10, reasoning_tokens=11),
        Usage(input_tokens=-1, output_tokens=10),
        Usage(input_tokens=100, output_tokens=10, cached_input_tokens=-5),
    ],
)
def test_inconsistent_usage_cannot_be_priced(usage: Usage) -> None:
    assert table_cost("gpt-4o-mini", usage) is None


# --- overrides --------------------------------------------------------------------------------


def test_an_override_wins_over_the_table_and_is_per_million() -> None:
    override = PricingOverride(input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5)
    price = resolve_price("gpt-4o-mini", override, TABLE)
    assert price.source == "override"
    assert price.input == pytest.approx(2e-06, rel=REL)
    # input 1000 incl. 200 cached: 800 * 2e-06 = 1.6e-03; 200 * 5e-07 = 1e-04
    # output 300 * 8e-06 = 2.4e-03; total 1.6e-03 + 1e-04 + 2.4e-03 = 4.1e-03
    usage = Usage(input_tokens=1000, output_tokens=300, cached_input_tokens=200)
    assert cost(usage, price) == pytest.approx(4.1e-03, rel=REL)


def test_an_override_prices_a_model_the_table_does_not_know() -> None:
    override = PricingOverride(input_per_mtok=0.1, output_per_mtok=0.4, reasoning_per_mtok=1.0)
    price = resolve_price("hosted_vllm/my-model", override, TABLE)
    # 1000 * 1e-07 = 1e-04; output 500 incl. 200 reasoning: 300 * 4e-07 = 1.2e-04, 200 * 1e-06 = 2e-04
    # total 1e-04 + 1.2e-04 + 2e-04 = 4.2e-04
    usage = Usage(input_tokens=1000, output_tokens=500, reasoning_tokens=200)
    assert cost(usage, price) == pytest.approx(4.2e-04, rel=REL)


def test_an_override_field_left_out_is_unknown_not_taken_from_the_table() -> None:
    price = resolve_price("gpt-4o-mini", PricingOverride(input_per_mtok=1.0), TABLE)
    assert price.output is None
    assert cost(Usage(input_tokens=1000, output_tokens=1), price) is None
    # no output tokens, so nothing is billed at the unknown rate: 1000 * 1e-06 = 1e-03
    assert cost(Usage(input_tokens=1000, output_tokens=0), price) == pytest.approx(1e-03, rel=REL)


def test_per_second_pricing_bills_end_to_end_time() -> None:
    # a $2.50/hour GPU: per_second = 2.5 / 3600; a 1.2 s request: 2.5 * 1.2 / 3600 = 1/1200
    price = resolve_price("hosted_vllm/llama", PricingOverride(per_second=2.5 / 3600), TABLE)
    assert price.per_second == pytest.approx(6.944444444444444e-04, rel=REL)
    usage = Usage(input_tokens=1000, output_tokens=500, e2e_s=1.2)
    assert cost(usage, price) == pytest.approx(1 / 1200, rel=REL)
    assert cost(Usage(input_tokens=1000, output_tokens=500, e2e_s=None), price) is None
    # tokens do not matter, and need not be reported
    assert cost(Usage(e2e_s=1.2), price) == pytest.approx(1 / 1200, rel=REL)


def test_pricing_override_accepts_yaml_shaped_input() -> None:
    override = PricingOverride.model_validate({"input_per_mtok": 1, "output_per_mtok": 4})
    assert override.input_per_mtok == 1.0
    assert override.output_per_mtok == 4.0
    assert PricingOverride.model_validate({"output_per_mtok": 0}).output_per_mtok == 0.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "at least one price"),
        ({"per_second": 0.001, "input_per_mtok": 1.0}, "per_second cannot be combined"),
        ({"per_second": 0.001, "reasoning_per_mtok": 1.0}, "reasoning_per_mtok"),
        ({"input_per_mtok": -1.0}, "greater than or equal to 0"),
        ({"per_second": -0.5}, "greater than or equal to 0"),
        ({"input_per_mtok": float("nan")}, "finite number"),
        ({"output_per_mtok": float("inf")}, "finite number"),
        ({"input_per_mtok": 1.0, "input_cost": 1.0}, "Extra inputs are not permitted"),
        ({"input_per_mtok": "cheap"}, "valid number"),
    ],
)
def test_pricing_override_validation(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PricingOverride.model_validate(data)


# --- table identity, blended price, dry-run estimates ------------------------------------------


def test_price_table_identity_is_canonical() -> None:
    table = {"b": {"y": 2.5e-07, "x": 1}, "a": {"z": None}, "sample_spec": {"x": 0.0}}
    reordered = {"sample_spec": {"x": 0.0}, "a": {"z": None}, "b": {"x": 1, "y": 2.5e-07}}
    identity = price_table_identity(table, "1.110.2")
    # canonical JSON: {"a":{"z":null},"b":{"x":1,"y":2.5e-07},"sample_spec":{"x":0.0}}
    assert identity == {
        "litellm_version": "1.110.2",
        "sha256": "fefb4aadf8ed246fdede10a1eb635593125ce2a4e62500906a35060c6b2bd160",
        "entries": 2,  # sample_spec is not a model
    }
    assert price_table_identity(reordered, "1.110.2") == identity
    changed = {**table, "b": {"x": 1, "y": 2.6e-07}}
    assert price_table_identity(changed, "1.110.2")["sha256"] != identity["sha256"]


def test_blended_price_per_million() -> None:
    price = resolve_price("gpt-4o-mini", None, TABLE)
    # (3 * 0.15 + 1 * 0.60) / 4 = 1.05 / 4 = 0.2625 USD per million tokens
    assert blended_per_mtok(price) == pytest.approx(0.2625, rel=REL)
    # 1:1 -> (0.15 + 0.60) / 2 = 0.375
    assert blended_per_mtok(price, input_weight=1, output_weight=1) == pytest.approx(0.375, rel=REL)
    assert blended_per_mtok(UNKNOWN_PRICE) is None
    assert blended_per_mtok(Price(per_second=0.001, source="override")) is None
    assert blended_per_mtok(Price(input=1e-06, source="override")) is None
    with pytest.raises(ValueError):
        blended_per_mtok(price, input_weight=0, output_weight=0)


def test_estimate_cost_range() -> None:
    price = resolve_price("gpt-4o-mini", None, TABLE)
    # low:  1000 * 1.5e-07 + 1 * 6e-07   = 1.5e-04 + 6e-07    = 1.506e-04
    # high: 1000 * 1.5e-07 + 256 * 6e-07 = 1.5e-04 + 1.536e-04 = 3.036e-04
    estimate = estimate_cost_range(price, input_tokens=1000, max_output_tokens=256)
    assert estimate is not None
    assert estimate == pytest.approx((1.506e-04, 3.036e-04), rel=REL)


def test_estimate_cost_range_bills_the_output_limit_at_the_reasoning_rate_if_higher() -> None:
    price = resolve_price("dashscope/qwen-turbo", None, TABLE)
    # low:  1000 * 5e-08 + 1 * 2e-07   = 5e-05 + 2e-07 = 5.02e-05
    # high: 1000 * 5e-08 + 100 * 5e-07 = 5e-05 + 5e-05 = 1e-04
    estimate = estimate_cost_range(price, input_tokens=1000, max_output_tokens=100)
    assert estimate == pytest.approx((5.02e-05, 1e-04), rel=REL)


def test_estimate_cost_range_edges() -> None:
    price = resolve_price("gpt-4o-mini", None, TABLE)
    # max_output_tokens = 0: both ends are the input alone, 1000 * 1.5e-07 = 1.5e-04
    assert estimate_cost_range(price, 1000, 0) == pytest.approx((1.5e-04, 1.5e-04), rel=REL)
    assert estimate_cost_range(UNKNOWN_PRICE, 1000, 256) is None
    assert estimate_cost_range(Price(per_second=0.001, source="override"), 1000, 256) is None
    with pytest.raises(ValueError):
        estimate_cost_range(price, -1, 256)
