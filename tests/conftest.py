"""Shared fixtures: a real simulator on loopback and config writing helpers."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from harness.sim import SimProcess, SimProfile

REPO = Path(__file__).resolve().parents[1]
# Test data ships inside the repository (tests/data, licences in each folder's
# README), so a clone anywhere passes its own tests.
TEST_DATA = REPO / "tests" / "data"
# A row key the Parquet schema lacks raises instead of being dropped (harness/store/parts.py);
# subprocesses started by tests inherit it.
os.environ["HARNESS_STRICT_ROWS"] = "1"


@pytest.fixture(scope="session")
def sim() -> Iterator[SimProcess]:
    """One simulator process for the session, with a few named profiles."""
    profiles = {
        "steady": SimProfile(ttft_ms=80, itl_ms=10, output_tokens=12, seed=7),
        "fast": SimProfile(ttft_ms=20, itl_ms=2, output_tokens=8),
        "broken": SimProfile(error_rate=1.0),
    }
    with SimProcess(profiles) as process:
        yield process


def sim_requests(process: SimProcess) -> int:
    """Chat requests the simulator has received so far."""
    base = process.api_base.removesuffix("/v1")
    return int(httpx.get(f"{base}/sim/stats").json()["requests"])


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a YAML config (dedented) into tmp_path and return its path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    return write
