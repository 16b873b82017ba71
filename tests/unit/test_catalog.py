"""The model catalog and deprecation audit: hand-written tables, plus one check of the real one."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from harness.cost.catalog import AuditRow, AuditStatus, ModelInfo, audit, lookup
from harness.cost.pricing import Usage, cost, price_table_identity, resolve_price

TABLE: dict[str, Any] = {
    "sample_spec": {"deprecation_date": "date when the model becomes deprecated in the format"},
    "gpt-4o-mini": {
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": 1.5e-07,
        "output_cost_per_token": 6e-07,
        "cache_read_input_token_cost": 7.5e-08,
        "max_input_tokens": 128000,
        "max_output_tokens": 16384,
        "supports_vision": True,
        "supports_function_calling": True,
        "supports_audio_input": False,
        "supports_prompt_caching": True,
        "deprecation_date": "2027-01-14",
        "successor_model": "gpt-6-luna",
    },
    "codestral/codestral-2405": {
        "litellm_provider": "codestral",
        "mode": "chat",
        "input_cost_per_token": 0.0,
        "output_cost_per_token": 0.0,
        "deprecation_date": "2025-06-16",
    },
    "gemini/gemini-3.5-flash": {  # a successor but no date
        "litellm_provider": "gemini",
        "successor_model": "gemini/gemini-3.6-flash",
    },
    "odd-model": {  # malformed values are ignored, not trusted
        "litellm_provider": "openai",
        "deprecation_date": "soon",
        "max_input_tokens": "lots",
        "input_cost_per_token": "free",
        "supports_vision": "yes",
        "successor_model": "",
    },
}


def test_lookup_of_a_known_model_through_its_provider_prefix() -> None:
    assert lookup("openai/gpt-4o-mini", TABLE) == ModelInfo(
        model="openai/gpt-4o-mini",
        table_key="gpt-4o-mini",
        provider="openai",
        mode="chat",
        input_per_mtok=0.15,  # 1.5e-07 * 1e6, shown to 12 significant digits
        output_per_mtok=0.6,
        cached_input_per_mtok=0.075,
        max_input_tokens=128000,
        max_output_tokens=16384,
        capabilities=["supports_function_calling", "supports_prompt_caching", "supports_vision"],
        deprecation_date=date(2027, 1, 14),
        successor_model="gpt-6-luna",
        known=True,
    )


def test_lookup_of_an_unknown_model() -> None:
    assert lookup("hosted_vllm/gpt-4o-mini", TABLE) == ModelInfo(
        model="hosted_vllm/gpt-4o-mini", known=False
    )
    assert lookup("sample_spec", TABLE).known is False


def test_lookup_ignores_malformed_values() -> None:
    info = lookup("odd-model", TABLE)
    assert info.known
    assert info.deprecation_date is None
    assert info.max_input_tokens is None
    assert info.input_per_mtok is None
    assert info.capabilities == []
    assert info.successor_model is None


# gpt-4o-mini's 2027-01-14 is 5 (to Nov 30) + 31 (December) + 14 (January) = 50 days away
TODAY = date(2026, 11, 25)


@pytest.mark.parametrize(
    ("within_days", "gpt_status"),
    [(None, "deprecating"), (50, "deprecating"), (49, "ok"), (0, "ok")],
)
def test_audit_statuses(within_days: int | None, gpt_status: AuditStatus) -> None:
    models = ["openai/gpt-4o-mini", "codestral/codestral-2405", "gemini/gemini-3.5-flash", "x/y"]
    rows = audit(models, TABLE, today=TODAY, within_days=within_days)
    assert rows == [
        AuditRow(
            "openai/gpt-4o-mini", gpt_status, "gpt-4o-mini", date(2027, 1, 14), 50, "gpt-6-luna"
        ),
        # 2025-06-16 -> 2026-06-16: 365 days; -> 2026-11-16: 30 + 31 + 31 + 30 + 31 = 153;
        # -> 2026-11-25: 9. 365 + 153 + 9 = 527 days ago
        AuditRow(
            "codestral/codestral-2405",
            "deprecated",
            "codestral/codestral-2405",
            date(2025, 6, 16),
            -527,
            None,
        ),
        AuditRow(
            "gemini/gemini-3.5-flash",
            "ok",
            "gemini/gemini-3.5-flash",
            None,
            None,
            "gemini/gemini-3.6-flash",
        ),
        AuditRow("x/y", "unknown", None, None, None, None),
    ]


def test_a_model_is_deprecated_on_its_deprecation_date() -> None:
    (row,) = audit(["gpt-4o-mini"], TABLE, today=date(2027, 1, 14), within_days=30)
    assert (row.status, row.days_left) == ("deprecated", 0)
    (row,) = audit(["gpt-4o-mini"], TABLE, today=date(2027, 1, 13), within_days=1)
    assert (row.status, row.days_left) == ("deprecating", 1)


def test_audit_keeps_order_and_duplicates_and_rejects_negative_horizons() -> None:
    rows = audit(["x", "gpt-4o-mini", "x"], TABLE, today=TODAY, within_days=None)
    assert [r.model for r in rows] == ["x", "gpt-4o-mini", "x"]
    with pytest.raises(ValueError):
        audit(["gpt-4o-mini"], TABLE, today=TODAY, within_days=-1)


def test_against_the_real_litellm_table() -> None:
    """The bundled table of the installed litellm (1.110.2 when written): keys, dates, costs."""
    from importlib.metadata import version

    from harness.providers.litellm import import_litellm

    litellm = import_litellm()
    table = litellm.model_cost

    info = lookup("openai/gpt-4o-mini", table)
    assert info.table_key == "gpt-4o-mini"
    assert info.provider == "openai"
    assert info.deprecation_date == date(2027, 1, 14)
    assert info.successor_model == "gpt-6-luna"
    assert "supports_prompt_caching" in info.capabilities

    # Every deprecation date in the table parses (sample_spec documents the field in words).
    unparsed = [
        key
        for key, entry in table.items()
        if key != "sample_spec"
        and entry.get("deprecation_date") is not None
        and lookup(key, table).deprecation_date is None
    ]
    assert unparsed == []

    rows = audit(
        ["openai/gpt-4o-mini", "codestral/codestral-2405", "dashscope/qwen-turbo", "openai/nope"],
        table,
        today=date(2026, 11, 25),
        within_days=90,
    )
    assert [(r.status, r.days_left, r.successor_model) for r in rows] == [
        ("deprecating", 50, "gpt-6-luna"),
        ("deprecated", -527, None),
        ("ok", None, None),  # no deprecation date
        ("unknown", None, None),
    ]

    # Our cost agrees with litellm's own on the shapes both model.
    from litellm.types.utils import (
        CompletionTokensDetailsWrapper,
        PromptTokensDetailsWrapper,
    )
    from litellm.types.utils import Usage as LitellmUsage

    def litellm_cost(model: str, usage: Usage) -> float:
        assert usage.input_tokens is not None and usage.output_tokens is not None
        cached, written = usage.cached_input_tokens or 0, usage.cache_write_tokens or 0
        wrapped = LitellmUsage(
            prompt_tokens=usage.input_tokens,
            completion_tokens=usage.output_tokens,
            total_tokens=usage.input_tokens + usage.output_tokens,
            prompt_tokens_details=PromptTokensDetailsWrapper(
                cached_tokens=cached, cache_creation_tokens=written
            ),
            completion_tokens_details=CompletionTokensDetailsWrapper(
                reasoning_tokens=usage.reasoning_tokens or 0
            ),
            cache_read_input_tokens=cached,
            cache_creation_input_tokens=written,
        )
        prompt, completion = litellm.cost_per_token(model=model, usage_object=wrapped)
        return float(prompt) + float(completion)

    cases = [
        ("openai/gpt-4o-mini", Usage(1000, 500)),
        ("openai/gpt-4o-mini", Usage(1000, 500, cached_input_tokens=400, reasoning_tokens=100)),
        ("claude-sonnet-4-5", Usage(1000, 500, cached_input_tokens=300, cache_write_tokens=200)),
        ("dashscope/qwen-turbo", Usage(1000, 500, reasoning_tokens=100)),  # has a reasoning rate
    ]
    for model, usage in cases:
        ours = cost(usage, resolve_price(model, None, table))
        assert ours == pytest.approx(litellm_cost(model, usage), rel=1e-12), model

    identity = price_table_identity(table, version("litellm"))
    assert identity["entries"] == len(table) - 1  # sample_spec
    assert len(identity["sha256"]) == 64
