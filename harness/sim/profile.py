"""Latency and fault profile of the simulated provider."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Fault = Literal[
    "rate_limit",  # HTTP 429 with Retry-After
    "server_error",  # HTTP 503
    "hang_before_first_token",  # role chunk, then silence for hang_s
    "hang_mid_stream",  # half the tokens, then silence for hang_s
    "connection_reset",  # half the tokens, then the connection is dropped
    "malformed_chunk",  # an SSE event whose JSON does not parse, mid-stream
    "no_finish",  # the stream ends without a finish reason or [DONE]
    "empty",  # a complete stream without any text
    "content_filter",  # a few tokens, then finish_reason "content_filter"
    "auth_error",  # HTTP 401 echoing the Authorization (and any *key*/*token*) header
]
FAULTS: tuple[str, ...] = Fault.__args__  # type: ignore[attr-defined]


class SimProfile(BaseModel):
    """How one simulated model behaves.

    Times are in milliseconds because that is how people state latency targets.
    ``jitter`` is the relative standard deviation applied to TTFT and to each
    inter-token gap (0.1 = ±10 %); it never makes a delay negative.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    ttft_ms: float = Field(
        default=50.0, ge=0, description="delay before the first output token (reasoning or text)"
    )
    itl_ms: float = Field(default=5.0, ge=0, description="delay between two output tokens")
    output_tokens: int = Field(
        default=64, ge=1, le=10_000_000, description="answer length before max_tokens"
    )
    jitter: float = Field(default=0.0, ge=0, le=1, description="relative std-dev of delays")
    reasoning_tokens: int = Field(
        default=0,
        ge=0,
        description="tokens streamed as delta.reasoning_content before the text, itl_ms apart "
        "(counted in completion_tokens, not against max_tokens)",
    )
    usage_reasoning: bool = Field(
        default=True,
        description="report reasoning tokens as usage.completion_tokens_details.reasoning_tokens",
    )
    tokens_per_chunk: int = Field(
        default=1, ge=1, description="tokens per SSE event, sent when the event's last one is due"
    )
    error_rate: float = Field(default=0.0, ge=0, le=1, description="share of requests → HTTP 500")
    abstain_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of answers that are 'I don't know'"
    )
    faults: dict[Fault, float] = Field(
        default_factory=dict, description="per-request probability of each fault"
    )
    script: list[Fault | Literal["ok"]] = Field(
        default_factory=list,
        description="deterministic outcomes of this model's first requests, in order",
    )
    retry_after_s: float = Field(default=1.0, ge=0, description="Retry-After of a 429")
    hang_s: float = Field(default=30.0, ge=0, description="how long a hang lasts")
    seed: int = Field(default=0, description="makes text, jitter and errors reproducible")
    cache_read_tokens: int = Field(
        default=0, ge=0, description="Anthropic dialect: usage.cache_read_input_tokens"
    )
    cache_write_tokens: int = Field(
        default=0, ge=0, description="Anthropic dialect: usage.cache_creation_input_tokens"
    )
    # Capacity (harness/sim/capacity.py): the truth a capacity search is tested against.
    max_concurrency: int | None = Field(
        default=None, ge=1, description="requests served at once; the others queue for a slot"
    )
    max_rps: int | None = Field(
        default=None, ge=1, description="requests accepted in any 1 s; beyond: 429 + Retry-After"
    )
