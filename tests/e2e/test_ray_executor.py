"""The ray executor on a real two-node Ray cluster (one machine), against the simulator.

Skipped only when ray is not importable (the ``ray`` extra); CI installs it. One
cluster serves the whole module: it takes ~20 s to start on a loaded 2-core machine.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.sim import SimProcess

from ..conftest import TEST_DATA, sim_requests

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

pytestmark = pytest.mark.slow

SQUAD_SAMPLE = TEST_DATA / "squad-v2" / "sample-200.jsonl"
PRICED = "pricing: {input_per_mtok: 1000.0, output_per_mtok: 2000.0}"
KEY_VAR = "HARNESS_RAY_TEST_KEY"
SECRET = "sk-raytest-0123456789abcdefghijklmnop"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A head node and a worker node (2 CPUs each), and this process connected to it."""
    # Set before the nodes start: their workers inherit it, as a cluster's nodes
    # would from their own environment (docs/scale.md).
    os.environ[KEY_VAR] = SECRET
    # The machine is shared: other processes' memory must not get our actors killed.
    os.environ["RAY_memory_monitor_refresh_ms"] = "0"
    started = time.monotonic()
    nodes = cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "include_dashboard": False},
    )
    nodes.add_node(num_cpus=2)
    ray.init(address=nodes.address, namespace="harness", logging_level="warning")
    print(f"\nray cluster up in {time.monotonic() - started:.1f} s")
    try:
        yield nodes
    finally:
        ray.shutdown()
        nodes.shutdown()
        os.environ.pop(KEY_VAR, None)


def run_cli(config: Path, root: Path, *extra: str) -> pd.DataFrame:
    result = CliRunner().invoke(
        main, ["run", str(config), "--out", str(root), "--no-progress", *extra]
    )
    assert result.exit_code == 0, result.output
    return pd.read_parquet(root)


def manifest_of(root: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(next(root.glob("*/_manifest.json")).read_text())
    return manifest


IDENTITY = ["request_index", "suite", "case_id", "repeat", "provider", "load_level"]


def test_the_same_rows_as_inline_for_a_mixed_config(
    cluster: Any, sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    text = """
        run: {{name: mixed, concurrency: 8, warmup_requests: 1{executor}}}
        providers:
          - {{name: steady, model: openai/steady, api_base: "{sim.api_base}"}}
          - name: simmed
            simulate: {{ttft_ms: 10, itl_ms: 2, output_tokens: 6, seed: 3}}
        suites:
          - name: sweep
            kind: latency
            prompts: ["a b c", "d e f"]
            max_tokens: 8
            requests: 6
            load: {{pattern: concurrency, levels: [1, 3]}}
          - name: paced
            kind: latency
            prompts: ["g h"]
            max_tokens: 8
            requests: 8
            load: {{pattern: rate, levels: [20]}}
          - name: qa
            kind: rag_qa
            dataset: "{data}"
            limit: 5
        """
    # The same plan (executor and ray are not part of the config's hash).
    config = write_config(text.format(executor="", sim=sim, data=SQUAD_SAMPLE), "inline.yaml")
    on_ray = ", executor: ray, ray: {actors: 3, cpus_per_actor: 0.5}"
    ray_config = write_config(text.format(executor=on_ray, sim=sim, data=SQUAD_SAMPLE), "ray.yaml")
    inline = run_cli(config, tmp_path / "inline")
    took = time.monotonic()
    spread = run_cli(ray_config, tmp_path / "ray")
    print(f"ray run: {time.monotonic() - took:.1f} s for {len(spread)} rows")
    # 2 providers × (6 × 2 levels + 8 + 5) = 50 rows, the same ones.
    assert len(inline) == len(spread) == 50
    key = inline[IDENTITY].sort_values("request_index").reset_index(drop=True)
    other = spread[IDENTITY].sort_values("request_index").reset_index(drop=True)
    pd.testing.assert_frame_equal(key, other)
    assert sorted(spread["request_index"]) == list(range(50))
    assert (spread["status"] == "ok").all(), spread[["error_type", "error_message"]]
    assert set(inline["executor"]) == {"inline"} and set(inline["actor"]) == {0}
    assert set(spread["executor"]) == {"ray"}
    # Three actors; SPREAD places them over both nodes.
    assert set(spread["actor"]) <= {0, 1, 2} and spread["actor"].nunique() > 1
    assert spread["node"].nunique() == 2
    assert spread["node_clock_ok"].notna().all()
    # Scored on the actors: the simulator's seeded answers score the same.
    qa = spread[spread["suite"] == "qa"].sort_values("request_index")
    qa_inline = inline[inline["suite"] == "qa"].sort_values("request_index")
    assert qa["f1"].notna().all()
    assert list(qa["f1"]) == list(qa_inline["f1"])
    manifest = manifest_of(tmp_path / "ray")
    assert manifest["executor"]["name"] == "ray"
    nodes = {k: v for k, v in manifest["executor"]["nodes"].items() if k != "coordinator"}
    assert len(nodes) == 2
    for node in nodes.values():
        # One machine: both nodes share its clock, so the offset is within the round trip.
        assert abs(node["offset_ms"]) <= node["uncertainty_ms"] + 1.0
