"""Latency and fault profile of the simulated provider."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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

GRADE_HEADER = "X-Harness-Sim-Case"
"""The header that hands a simulated provider the case it answers: JSON ``{"case", "repeat",
"references"}``. The pipeline adds it only when the endpoint is simulated
(:func:`harness.run.pipeline.wire_endpoint`); nothing of it reaches a real provider."""


class SimToolCall(BaseModel):
    """A tool call the simulated model makes (the name need not be a declared tool)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    arguments: dict[str, Any] | str = Field(
        default_factory=dict, description="an object, or raw text (e.g. broken JSON)"
    )


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
        description="report reasoning tokens as usage.completion_tokens_details.reasoning_tokens"
        " (Gemini: as thoughtsTokenCount; off, they are inside candidatesTokenCount)",
    )
    tokens_per_chunk: int = Field(
        default=1, ge=1, description="tokens per SSE event, sent when the event's last one is due"
    )
    error_rate: float = Field(default=0.0, ge=0, le=1, description="share of requests → HTTP 500")
    abstain_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of answers that are 'I don't know'"
    )
    accuracy: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="share of graded cases (RAG, with their reference handed over out of band)"
        " answered with the reference; the rest abstain (abstain_rate) or answer wrongly."
        " None: answer with words from the prompt",
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
        default=0,
        ge=0,
        description="Anthropic dialect: usage.cache_read_input_tokens;"
        " Gemini: cachedContentTokenCount (inside promptTokenCount); without prefix_cache",
    )
    cache_write_tokens: int = Field(
        default=0, ge=0, description="Anthropic dialect: usage.cache_creation_input_tokens"
    )
    prefix_cache: bool = Field(
        default=False,
        description="model a prefix cache: a request whose leading messages an earlier request"
        " of this model began with reports their words as cached tokens (Anthropic dialect:"
        " only up to a cache_control breakpoint, as Anthropic's API)",
    )
    cache_ttft_ms: float | None = Field(
        default=None, ge=0, description="TTFT of a request with cached tokens (prefix_cache)"
    )
    replies: dict[str, str] = Field(
        default_factory=dict,
        description="scripted answers: when the last user message contains a key"
        " (case-insensitive), the answer is its text (words, cut at max_tokens)",
    )

    tool_calls: list[SimToolCall] | None = Field(
        default=None,
        description="calls made when a request declares tools (default: the first declared "
        "tool, with its required arguments filled from the schema, see sim.server.fill_schema)",
    )
    invalid_json_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="share of structured answers (response_format) cut before their last "
        "character, so that they are not JSON",
    )

    # Capacity (harness/sim/capacity.py): the truth a capacity search is tested against.
    max_concurrency: int | None = Field(
        default=None, ge=1, description="requests served at once; the others queue for a slot"
    )
    max_rps: int | None = Field(
        default=None, ge=1, description="requests accepted in any 1 s; beyond: 429 + Retry-After"
    )

    @model_validator(mode="after")
    def _shares(self) -> SimProfile:
        if self.accuracy is not None and self.accuracy + self.abstain_rate > 1 + 1e-12:
            raise ValueError(
                f"accuracy ({self.accuracy:g}) + abstain_rate ({self.abstain_rate:g}) must be"
                " at most 1: they are shares of the same answers"
            )
        return self
