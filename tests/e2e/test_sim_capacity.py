"""The simulator's capacity limits (harness.sim.capacity): the truth capacity searches meet."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from harness.sim import SimProcess, SimProfile


@pytest.fixture(scope="module")
def limited() -> Iterator[SimProcess]:
    profiles = {
        # One token, 100 ms: a request holds its slot for S = 0.1 s.
        "pair": SimProfile(ttft_ms=100, itl_ms=0, output_tokens=1, max_concurrency=2),
        "five": SimProfile(ttft_ms=1, itl_ms=0, output_tokens=1, max_rps=5),
    }
    with SimProcess(profiles) as process:
        yield process


async def _post(client: httpx.AsyncClient, base: str, model: str) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = await client.post(
        f"{base}/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
    )
    return time.perf_counter() - start, response


def test_requests_beyond_max_concurrency_queue(limited: SimProcess) -> None:
    async def burst() -> list[tuple[float, httpx.Response]]:
        async with httpx.AsyncClient(timeout=10) as client:
            return await asyncio.gather(
                *(_post(client, limited.api_base, "pair") for _ in range(6))
            )

    done = sorted(t for t, r in asyncio.run(burst()) if r.status_code == 200)
    assert len(done) == 6
    # Two slots, 0.1 s each: the six finish in waves at >= 0.1, 0.1, 0.2, 0.2, 0.3, 0.3 s
    # (lower bounds strict: the server cannot be faster than its sleeps; upper generous).
    for took, wave in zip(done, (0.1, 0.1, 0.2, 0.2, 0.3, 0.3), strict=True):
        assert wave - 0.005 <= took < wave + 0.25
    stats = httpx.get(limited.api_base.removesuffix("/v1") + "/sim/stats").json()
    assert stats["queued"] >= 4


def test_requests_beyond_max_rps_get_429_with_retry_after(limited: SimProcess) -> None:
    async def burst() -> list[tuple[float, httpx.Response]]:
        async with httpx.AsyncClient(timeout=10) as client:
            return await asyncio.gather(
                *(_post(client, limited.api_base, "five") for _ in range(8))
            )

    responses = [r for _, r in asyncio.run(burst())]
    # 8 at once against 5 a second: 5 accepted, 3 refused until the first leaves the window.
    assert sorted(r.status_code for r in responses) == [200] * 5 + [429] * 3
    waits = [float(r.headers["Retry-After"]) for r in responses if r.status_code == 429]
    assert all(0.5 < w <= 1.0 for w in waits)
    time.sleep(1.05)  # the window has emptied: accepted again
    again = asyncio.run(burst())
    assert sum(r.status_code == 200 for _, r in again) == 5


def test_the_anthropic_dialect_has_the_same_limits(limited: SimProcess) -> None:
    time.sleep(1.05)  # the other tests' requests have left the rate window

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=10) as client:
            body = {
                "model": "five",
                "max_tokens": 1,
                "messages": [{"role": "user", "content": "hi"}],
            }
            return await asyncio.gather(
                *(client.post(f"{limited.api_base}/messages", json=body) for _ in range(7))
            )

    codes = sorted(r.status_code for r in asyncio.run(burst()))
    assert codes == [200] * 5 + [429] * 2
