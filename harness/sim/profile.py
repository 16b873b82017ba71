"""Latency and fault profile of the simulated provider."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SimProfile(BaseModel):
    """How one simulated model behaves.

    Times are in milliseconds because that is how people state latency targets.
    ``jitter`` is the relative standard deviation applied to TTFT and to each
    inter-token gap (0.1 = ±10 %); it never makes a delay negative.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft_ms: float = Field(default=50.0, ge=0, description="delay before the first text token")
    itl_ms: float = Field(default=5.0, ge=0, description="delay between two output tokens")
    output_tokens: int = Field(default=64, ge=1, description="answer length before max_tokens")
    jitter: float = Field(default=0.0, ge=0, le=1, description="relative std-dev of delays")
    error_rate: float = Field(default=0.0, ge=0, le=1, description="share of requests → HTTP 500")
    abstain_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of answers that are 'I don't know'"
    )
    seed: int = Field(default=0, description="makes text, jitter and errors reproducible")
