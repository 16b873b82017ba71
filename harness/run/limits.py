"""Client-side pacing and retries, so the harness neither causes the 429s it measures
nor lets one transient fault decide a comparison.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

# Faults worth another attempt: the provider said "later" or never answered.
# A 4xx other than 429, a content filter or an empty answer would fail again.
RETRYABLE = frozenset(
    {
        "rate_limited",
        "connection_error",
        "timeout_first_token",
        "http_500",
        "http_502",
        "http_503",
        "http_504",
        "http_529",
    }
)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; a Retry-After header wins."""

    max_retries: int = 2
    base_s: float = 0.5
    cap_s: float = 30.0
    retryable: frozenset[str] = field(default=RETRYABLE)

    def should_retry(self, error_type: str | None, attempt: int) -> bool:
        return error_type in self.retryable and attempt <= self.max_retries

    def wait_s(self, attempt: int, retry_after_s: float | None, rng: random.Random) -> float:
        if retry_after_s is not None:
            return min(retry_after_s, self.cap_s * 4)
        return rng.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))


class RateLimiter:
    """Token buckets for requests per minute and tokens per minute (either optional).

    ``acquire`` waits until both buckets hold enough. A bucket holds one
    second's worth (at least one request), so a run starts without a
    minute-sized burst that a provider enforcing its limit per second would
    answer with 429s.
    """

    def __init__(self, rpm: float | None = None, tpm: float | None = None):
        self.rpm = rpm
        self.tpm = tpm
        self._request_cap = max(1.0, rpm / 60) if rpm else 0.0
        self._token_cap = tpm / 60 if tpm else 0.0
        self._requests = self._request_cap
        self._tokens = self._token_cap
        self._last = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        elapsed, self._last = now - self._last, now
        if self.rpm:
            self._requests = min(self._request_cap, self._requests + elapsed * self.rpm / 60)
        if self.tpm:
            self._tokens = min(self._token_cap, self._tokens + elapsed * self.tpm / 60)

    async def acquire(self, tokens: int = 0) -> float:
        """Wait for a request slot (and ``tokens``); returns the seconds waited."""
        waited = 0.0
        async with self._lock:  # first come, first served
            while True:
                self._refill()
                need_requests = 1.0 - self._requests if self.rpm else 0.0
                # A request larger than the whole bucket waits for a full bucket.
                want = min(float(tokens), self._token_cap) if self.tpm else 0.0
                need_tokens = want - self._tokens if self.tpm else 0.0
                delay = max(
                    need_requests * 60 / self.rpm if self.rpm and need_requests > 0 else 0.0,
                    need_tokens * 60 / self.tpm if self.tpm and need_tokens > 0 else 0.0,
                )
                if delay <= 0:
                    if self.rpm:
                        self._requests -= 1.0
                    if self.tpm:
                        self._tokens -= want
                    return waited
                await asyncio.sleep(delay)
                waited += delay
