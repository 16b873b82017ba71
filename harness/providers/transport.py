"""The litellm transport: one streamed request, timed and normalised into a row.

litellm is imported lazily (it takes seconds) and only in the process that
sends requests. The clock: ``t0`` is taken immediately before the awaited call,
so litellm's own preparation counts toward TTFT; the runner's warm-up request
keeps its one-off first-call setup (~0.25 s here) out of the measurements.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from harness.suites.base import RequestSpec

_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9_\-.=]+", re.IGNORECASE)
_KEYLIKE = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|gsk_[A-Za-z0-9]{12,})")


def import_litellm() -> Any:
    """Import litellm offline: its bundled price table, no network fetch at import."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


@dataclass(frozen=True)
class Endpoint:
    """What the transport needs to call one provider; the key stays out of every row."""

    provider: str
    model: str
    simulated: bool
    api_base: str | None
    api_key: str | None
    params: dict[str, Any]
    timeout_s: float


def scrub(text: str, secret: str | None) -> str:
    """Remove a key, bearer tokens and key-shaped strings from a provider's error text."""
    if secret:
        text = text.replace(secret, "***")
    text = _BEARER.sub(r"\1***", text)
    return _KEYLIKE.sub("***", text)


def classify_error(exc: BaseException) -> tuple[str, int | None]:
    """Map an exception to (error_type, http_status)."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout", None
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    message = str(exc)
    # litellm reports a refused connection as InternalServerError(500,
    # "Connection error."); that is not a status the server sent.
    if "Connection error" in message or name in ("APIConnectionError", "ConnectError"):
        return "connection_error", None
    if name in ("Timeout", "APITimeoutError") or "timed out" in message.lower():
        return "timeout", None
    if status == 429 or name == "RateLimitError":
        return "rate_limited", 429
    if status is not None:
        return f"http_{status}", status
    if name in ("MidStreamFallbackError",):
        return "stream_error", None
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower(), None


def _now_utc() -> datetime:
    return datetime.now(UTC)


async def send(litellm: Any, endpoint: Endpoint, request: RequestSpec) -> dict[str, Any]:
    """Send one request, stream the answer, and return its row (never raises on API errors)."""
    row: dict[str, Any] = {
        "suite": request.suite,
        "suite_kind": request.suite_kind,
        "case_id": request.case_id,
        "repeat": request.repeat,
        "provider": endpoint.provider,
        "model": endpoint.model,
        "simulated": endpoint.simulated,
        "max_tokens": request.max_tokens,
        "status": "ok",
        "error_type": None,
        "error_message": None,
        "http_status": None,
    }
    kwargs: dict[str, Any] = dict(endpoint.params)
    if endpoint.api_base:
        kwargs["api_base"] = endpoint.api_base
    if endpoint.api_key:
        kwargs["api_key"] = endpoint.api_key
    text_parts: list[str] = []
    offsets: list[float] = []
    first_chunk: float | None = None
    usage: Any = None
    finish_reason: str | None = None
    row["started_at"] = _now_utc()
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(endpoint.timeout_s):
            stream = await litellm.acompletion(
                model=endpoint.model,
                messages=request.messages,
                max_tokens=request.max_tokens,
                stream=True,
                stream_options={"include_usage": True},
                timeout=endpoint.timeout_s,
                max_retries=0,  # retries are the runner's business, and are recorded
                **kwargs,
            )
            async for chunk in stream:
                now = time.perf_counter() - t0
                if first_chunk is None:
                    first_chunk = now
                chunk_usage = getattr(chunk, "usage", None)
                if chunk_usage is not None:
                    usage = chunk_usage
                for choice in chunk.choices or ():
                    content = getattr(choice.delta, "content", None)
                    if content:
                        text_parts.append(content)
                        offsets.append(now)
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        error_type, status = classify_error(exc)
        if text_parts and error_type != "timeout":
            error_type = "stream_error"
        row.update(
            status="error",
            error_type=error_type,
            http_status=status,
            error_message=scrub(str(exc), endpoint.api_key)[:2000],
        )
    end = time.perf_counter() - t0

    row["first_chunk_s"] = first_chunk
    row["ttft_s"] = offsets[0] if offsets else None
    row["e2e_s"] = end if row["status"] == "ok" else None
    row["chunk_offsets_s"] = offsets
    row["text_chunks"] = len(offsets)
    row["finish_reason"] = finish_reason
    row["response_text"] = "".join(text_parts)
    _add_usage(row, usage)
    n = row["output_tokens"] or len(offsets)
    if row["status"] == "ok" and offsets and n > 1:
        row["itl_s"] = (offsets[-1] - offsets[0]) / (n - 1)
        row["tpot_s"] = (end - offsets[0]) / (n - 1)
    else:
        row["itl_s"] = row["tpot_s"] = None
    generating = end - offsets[0] if offsets else 0.0
    row["output_tps"] = n / generating if row["status"] == "ok" and generating > 0 else None
    row["cost_usd"] = cost_usd(litellm, endpoint.model, row)
    return row


def _add_usage(row: dict[str, Any], usage: Any) -> None:
    def get(obj: Any, name: str) -> int | None:
        value = getattr(obj, name, None) if obj is not None else None
        return int(value) if isinstance(value, int | float) else None

    row["input_tokens"] = get(usage, "prompt_tokens")
    row["output_tokens"] = get(usage, "completion_tokens")
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    row["cached_input_tokens"] = get(prompt_details, "cached_tokens")
    row["reasoning_tokens"] = get(completion_details, "reasoning_tokens")


def cost_usd(litellm: Any, model: str, row: dict[str, Any]) -> float | None:
    """Cost from litellm's bundled price table; None (not 0) when the model has no price."""
    if row["input_tokens"] is None and row["output_tokens"] is None:
        return None
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model,
            prompt_tokens=row["input_tokens"] or 0,
            completion_tokens=row["output_tokens"] or 0,
        )
    except Exception:
        return None
    return float(prompt_cost) + float(completion_cost)
