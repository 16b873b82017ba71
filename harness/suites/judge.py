"""Calls to an LLM judge: one non-streamed, structured-output request per answer."""

from __future__ import annotations

import asyncio
from typing import Any

from harness.cost.pricing import Usage, cost
from harness.providers.trace import Endpoint, classify_error, usage_counts
from harness.request import RequestSpec
from harness.secrets import scrub
from harness.suites.rag_qa import JUDGE_SCHEMA, judge_messages, parse_judgement


def judge_call(endpoint: Endpoint, row: dict[str, Any], request: RequestSpec) -> dict[str, Any]:
    """The arguments of the judge call that grades ``row``: what determines the verdict
    (the response cache keys stored verdicts on them, without ``api_key``)."""
    call: dict[str, Any] = {
        "model": endpoint.model,
        "messages": judge_messages(row, request),
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "grade", "schema": JUDGE_SCHEMA, "strict": True},
        },
        "max_tokens": 300,
        **endpoint.params,
    }
    if endpoint.api_base:
        call["api_base"] = endpoint.api_base
    if endpoint.api_key:
        call["api_key"] = endpoint.api_key
    return call


async def judge(
    litellm: Any,
    endpoint: Endpoint,
    row: dict[str, Any],
    request: RequestSpec,
    call: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Grade one answer; the judge's failure is recorded in ``judge_error``, never raised."""
    out: dict[str, Any] = {"judge_model": endpoint.model}
    call = call if call is not None else judge_call(endpoint, row, request)
    try:
        async with asyncio.timeout(endpoint.timeout_s):
            response = await litellm.acompletion(**call, timeout=endpoint.timeout_s, max_retries=0)
        usage = usage_counts(getattr(response, "usage", None))
        out["judge_input_tokens"] = usage["input_tokens"]
        out["judge_output_tokens"] = usage["output_tokens"]
        out["judge_cost_usd"] = cost(
            Usage(
                input_tokens=usage["input_tokens"],
                output_tokens=usage["output_tokens"],
                cached_input_tokens=usage["cached_input_tokens"],
                cache_write_tokens=usage["cache_write_tokens"],
                reasoning_tokens=usage["reasoning_tokens"],
                e2e_s=None,
            ),
            endpoint.price,
        )
        text = response.choices[0].message.content or ""
        out |= parse_judgement(text)
    except asyncio.CancelledError:
        raise
    except ValueError as exc:
        out["judge_error"] = f"unparseable: {scrub(str(exc), *endpoint.known_secrets)[:300]}"
    except Exception as exc:  # the judge failing must not lose the candidate's row
        out["judge_error"] = classify_error(exc)[0]
    return out
