"""The simulator's determinism and the store's round trip."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.errors import StoreError
from harness.sim import SimProcess
from harness.sim.profile import SimProfile
from harness.sim.server import answer_words
from harness.store.files import validate_run_id
from harness.store.parts import PartWriter, list_runs, read_runs


def test_answers_are_deterministic_and_respect_max_tokens() -> None:
    profile = SimProfile(output_tokens=10, seed=3)
    first = answer_words(profile, "m", "Where is the Eiffel tower?", None)
    assert first == answer_words(profile, "m", "Where is the Eiffel tower?", None)
    assert len(first) == 10 and set(first) <= {"Where", "is", "the", "Eiffel", "tower"}
    assert first != answer_words(
        SimProfile(output_tokens=10, seed=4), "m", "Where is the Eiffel tower?", None
    )
    assert len(answer_words(profile, "m", "x", 4)) == 4


def test_profile_rejects_impossible_values() -> None:
    with pytest.raises(ValueError):
        SimProfile(error_rate=1.5)
    with pytest.raises(ValueError):
        SimProfile(ttft_ms=-1)


def test_parts_round_trip_and_runs_are_listed(tmp_path: Path) -> None:
    writer = PartWriter(tmp_path / "run-a", "run-a", flush_rows=2)
    for i in range(5):
        writer.add(
            {
                "suite": "s",
                "provider": "p",
                "status": "ok",
                "request_index": i,
                "chunk_offsets_s": [0.1, 0.2],
            }
        )
    writer.flush()
    assert len(list((tmp_path / "run-a").glob("part-*.parquet"))) == 3
    assert not list((tmp_path / "run-a").glob(".*"))  # no temporary files left
    rows = read_runs(tmp_path).to_pandas()
    assert list(rows["request_index"]) == [0, 1, 2, 3, 4]
    assert list(rows["chunk_offsets_s"][0]) == [0.1, 0.2]
    assert list_runs(tmp_path) == ["run-a"]
    assert len(pd.read_parquet(tmp_path)) == 5


def test_run_ids_cannot_escape_the_results_root() -> None:
    for bad in ("../x", "a/b", ".hidden", "_x", ""):
        with pytest.raises(StoreError):
            validate_run_id(bad)
    assert validate_run_id("20261125T120000Z-nightly") == "20261125T120000Z-nightly"


def test_simulator_stamps_requests_that_name_a_user(sim: SimProcess) -> None:
    import httpx

    body = {
        "model": "steady",
        "user": "stamp-me",
        "stream": True,
        "messages": [{"role": "user", "content": "one two three"}],
    }
    with httpx.stream("POST", f"{sim.api_base}/chat/completions", json=body) as response:
        for _ in response.iter_lines():
            pass
    base = sim.api_base.removesuffix("/v1")
    served = httpx.get(f"{base}/sim/timings").json()
    stamp = served["stamp-me"]
    assert stamp["first_sent"] - stamp["received"] == pytest.approx(0.080, abs=0.010)
    assert httpx.get(f"{base}/sim/timings").json() == {}  # cleared when read
