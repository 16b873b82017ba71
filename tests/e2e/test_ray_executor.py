"""The ray executor on a real two-node Ray cluster (one machine), against the simulator.

Skipped only when ray is not importable (the ``ray`` extra); CI installs it. One
cluster serves the whole module: it takes ~20 s to start on a loaded 2-core machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

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


def on_ray(actors: int = 4) -> str:
    return f"executor: ray, ray: {{actors: {actors}, cpus_per_actor: 0.5}}"


def test_merged_arrivals_of_constant_rate_and_poisson_shares_match_the_rate(
    cluster: Any, sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    config = write_config(
        f"""
        run: {{name: arrivals, concurrency: 16, {on_ray()}}}
        providers:
          - {{name: fast, model: openai/fast, api_base: "{sim.api_base}"}}
        suites:
          - {{name: paced, kind: latency, prompts: ["a"], max_tokens: 4, requests: 40,
              load: {{pattern: rate, levels: [20]}}}}
          - {{name: random, kind: latency, prompts: ["b"], max_tokens: 4, requests: 80,
              load: {{pattern: poisson, levels: [20], seed: 1}}}}
        """
    )
    rows = run_cli(config, tmp_path / "out")
    assert len(rows) == 120 and rows["request_index"].is_unique
    assert (rows["status"] == "ok").all()

    paced = rows[rows["suite"] == "paced"].sort_values("scheduled_s")
    # Four shares of 5/s, offset by k/20 s: their union is one arrival every 1/20 s,
    # taken by the actors in turn (0, 1, 2, 3, 0, ...).
    assert np.allclose(paced["scheduled_s"], np.arange(40) / 20, atol=1e-9)
    assert list(paced["actor"]) == [0, 1, 2, 3] * 10
    # On the driver's clock, the first to the last send span 39/20 = 1.95 s: never
    # less (no request goes early), a generous margin above (a loaded machine).
    starts = paced["started_at"].sort_values()
    span = (starts.iloc[-1] - starts.iloc[0]).total_seconds()
    assert 1.95 - 0.05 <= span <= 1.95 + 1.5, span

    poisson = rows[rows["suite"] == "random"]
    # Four independent streams of 5/s: up to the first stream's last arrival the
    # merged arrivals are one Poisson stream of 20/s (exponential gaps of mean 50 ms).
    window = poisson.groupby("actor")["scheduled_s"].max().min()
    merged = np.sort(poisson["scheduled_s"][poisson["scheduled_s"] <= window].to_numpy())
    gaps = np.diff(merged)
    assert len(gaps) > 30
    assert stats.kstest(gaps, "expon", args=(0, 1 / 20)).pvalue > 0.01
    assert gaps.mean() == pytest.approx(1 / 20, rel=0.35)
    assert poisson["actor"].nunique() == 4


def test_a_budget_and_an_rpm_limit_hold_across_four_actors(
    cluster: Any, sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # As in test_cost: a request's worst case ≈ $0.075 (11 input tokens at $1000/M +
    # 32 output at $2000/M), its real cost $0.028. One $0.5 ledger for all four
    # actors: split four ways (or copied) the actors could spend up to $2.
    capped = write_config(
        f"""
        run: {{name: capped, budget_usd: 0.5, concurrency: 4, {on_ray()}}}
        providers:
          - {{name: priced, model: openai/steady, api_base: "{sim.api_base}", {PRICED}}}
        suites:
          - {{name: s, kind: latency, prompts: ["one two three four"], requests: 100,
              max_tokens: 32}}
        """,
        "capped.yaml",
    )
    root = tmp_path / "capped"
    before = sim_requests(sim)
    rows = run_cli(capped, root)
    warmups = 4  # one per actor
    sent = sim_requests(sim) - before - warmups
    assert 0 < len(rows) < 100
    assert sent == len(rows)
    assert (rows["status"] == "ok").all()
    assert rows["actor"].nunique() == 4
    manifest = manifest_of(root)
    assert manifest["stopped_reason"].startswith("budget:")
    # Every actor's warm-up (same prompt, $0.028 each) is paid for and counted too.
    spent = manifest["budget"]["spent_usd"]
    assert spent == pytest.approx(rows["cost_usd"].sum() + warmups * 0.028)
    assert spent <= 0.5

    # rpm 240 is 4/s with a bucket of 4 (one second's worth): 16 requests from four
    # actors go 4 at once, then one every 0.25 s: the last starts ≥ 12 × 0.25 = 3 s
    # after the first. Four unshared buckets would send all 16 at once.
    limited = write_config(
        f"""
        run: {{name: limited, concurrency: 8, {on_ray()}}}
        providers:
          - {{name: fast, model: openai/fast, api_base: "{sim.api_base}", rpm: 240}}
        suites:
          - {{name: s, kind: latency, prompts: ["a"], max_tokens: 4, requests: 16}}
        """,
        "limited.yaml",
    )
    rows = run_cli(limited, tmp_path / "limited")
    assert len(rows) == 16 and (rows["status"] == "ok").all()
    assert rows["actor"].nunique() == 4
    starts = rows["started_at"].sort_values()
    span = (starts.iloc[-1] - starts.iloc[0]).total_seconds()
    assert 3.0 - 0.05 <= span <= 3.0 + 5.0, span


def test_an_actor_killed_mid_run_loses_and_duplicates_nothing(
    cluster: Any, sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # 40 requests of ~0.2 s (steady: 80 ms to the first token, 12 tokens 10 ms apart),
    # four actors one at a time each: ~2 s of sending per actor.
    config = write_config(
        f"""
        run: {{name: killed, concurrency: 4, {on_ray()}}}
        providers:
          - {{name: steady, model: openai/steady, api_base: "{sim.api_base}"}}
        suites:
          - {{name: s, kind: latency, prompts: ["a b", "c d"], max_tokens: 12, requests: 40,
              load: {{pattern: concurrency, levels: [4]}}}}
        """
    )
    root = tmp_path / "out"
    before = sim_requests(sim)
    result: dict[str, Any] = {}

    def go() -> None:
        result["cli"] = CliRunner().invoke(
            main, ["run", str(config), "--out", str(root), "--no-progress"]
        )

    thread = threading.Thread(target=go)
    thread.start()
    # Mid-run: the four warm-ups and eight measured requests have reached the simulator.
    deadline = time.monotonic() + 120
    while sim_requests(sim) - before < 4 + 8:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.05)
    victim = next(
        a for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].endswith("-0")
    )
    ray.kill(ray.get_actor(victim["name"], namespace=victim["namespace"]), no_restart=True)
    thread.join(timeout=180)
    assert not thread.is_alive()
    assert result["cli"].exit_code == 0, result["cli"].output

    rows = pd.read_parquet(root)
    # Every planned request exactly once; actor 0's unfinished ones re-sent by its
    # replacement (actor 4), so none is an error.
    assert sorted(rows["request_index"]) == list(range(40))
    assert (rows["status"] == "ok").all(), rows[["actor", "error_type", "error_message"]]
    assert 4 in set(rows["actor"])
    manifest = manifest_of(root)
    assert manifest["executor"]["replaced_actors"] == 1
    assert manifest["executor"]["duplicate_rows_dropped"] == 0


def test_keys_come_from_each_actors_environment_not_from_the_driver(
    cluster: Any, sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    from ray import cloudpickle

    from harness.config.spec import load_config
    from harness.run.endpoints import build_endpoints, key_sources, resolve_keys
    from harness.run.executors import Job
    from harness.run.executors.ray import ShardPayload, payload_jobs
    from harness.run.nodeclock import SAME_CLOCK
    from harness.run.plan import build_plan

    config = write_config(
        f"""
        run: {{name: keyed, concurrency: 4, {on_ray(2)}}}
        providers:
          - name: steady
            model: openai/steady
            api_base: "{sim.api_base}"
            api_key_env: {KEY_VAR}
            params: {{extra_headers: {{x-api-key: "${{{KEY_VAR}}}"}}}}
        suites:
          - {{name: s, kind: latency, prompts: ["a"], max_tokens: 4, requests: 6}}
        """
    )
    # What the driver sends each actor, pickled as Ray pickles it: no key in it.
    spec = load_config(config)
    endpoints, judges = build_endpoints(spec, resolve_keys(spec), None)
    assert endpoints["steady"].api_key == SECRET  # the driver has it
    job = Job(build_plan(spec), endpoints, judges, 4, {}, 1, {}, {})
    job.key_sources = key_sources(spec, endpoints, judges)
    for share in payload_jobs(job, 2, 32):
        payload = ShardPayload(0, 0, share, None, SAME_CLOCK, SAME_CLOCK, "n", job.key_sources)
        sent = cloudpickle.dumps(payload)
        assert SECRET.encode() not in sent
        assert KEY_VAR.encode() in sent  # the name travels, the value does not

    # The actors read it from their nodes' environment (set when the nodes started).
    rows = run_cli(config, tmp_path / "out")
    assert len(rows) == 6 and (rows["status"] == "ok").all()
    stored = (tmp_path / "out").rglob("*")
    assert not any(SECRET.encode() in p.read_bytes() for p in stored if p.is_file())


def test_ctrl_c_keeps_every_row_and_another_executor_resumes(
    cluster: Any, sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    from .test_resume import wait_for_rows

    config = write_config(
        f"""
        run: {{name: intr, concurrency: 4}}
        providers:
          - {{name: steady, model: openai/steady, api_base: "{sim.api_base}"}}
        suites:
          - {{name: s, kind: latency, prompts: ["a b"], max_tokens: 12, requests: 60,
              load: {{pattern: concurrency, levels: [4]}}}}
        """
    )
    root = tmp_path / "out"
    # A driver of its own, connecting to the cluster as `harness run` on a head node would.
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "harness.cli", "run", str(config), "--out", str(root)),
            *("--run-id", "intr", "--no-progress", "--ray-address", cluster.address),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_rows(root / "intr", 8, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    kept = pd.read_parquet(root)
    assert 8 <= len(kept) < 60 and kept["request_index"].is_unique
    assert set(kept["executor"]) == {"ray"}
    manifest = manifest_of(root)
    assert manifest["status"] == "interrupted"

    # Resumed in this process by the inline executor: only the missing indices.
    before = sim_requests(sim)
    finished = kept[kept["status"] == "ok"]
    result = CliRunner().invoke(
        main,
        ["run", str(config), "--out", str(root), "--resume", "intr", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert sim_requests(sim) - before == 60 - len(finished) + 1  # plus one warm-up
    merged = pd.read_parquet(root)
    assert sorted(merged["request_index"]) == list(range(60))
    assert set(merged["status"]) == {"ok"}
    assert set(merged["executor"]) == {"ray", "inline"}


def _shards_alive() -> list[str]:
    return [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith("shard-")
    ]


def test_a_killed_driver_takes_its_actors_along_and_resume_sends_the_rest(
    cluster: Any, sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    from .test_resume import wait_for_rows

    config = write_config(
        f"""
        run: {{name: crash, concurrency: 4, {on_ray(2)}}}
        providers:
          - {{name: steady, model: openai/steady, api_base: "{sim.api_base}"}}
        suites:
          - {{name: s, kind: latency, prompts: ["a b"], max_tokens: 12, requests: 60,
              load: {{pattern: concurrency, levels: [4]}}}}
        """
    )
    root = tmp_path / "out"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "harness.cli", "run", str(config), "--out", str(root)),
            *("--run-id", "crash", "--no-progress", "--ray-address", cluster.address),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_rows(root / "crash", 8, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    # The actors belong to the driver: Ray ends them with it, so nobody goes on buying
    # requests whose rows no one journals.
    deadline = time.monotonic() + 60
    while _shards_alive() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _shards_alive()
    stopped = sim_requests(sim)
    time.sleep(0.5)
    assert sim_requests(sim) == stopped

    result = CliRunner().invoke(
        main,
        ["run", str(config), "--out", str(root), "--resume", "crash", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    merged = pd.read_parquet(root)
    assert sorted(merged["request_index"]) == list(range(60))
    assert set(merged["status"]) == {"ok"}


def test_a_worker_node_lost_mid_run_loses_and_duplicates_nothing(
    cluster: Any, sim: SimProcess, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    # A third node for this test only: killing it leaves the module's two nodes.
    doomed = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    config = write_config(
        f"""
        run: {{name: nodelost, concurrency: 6, {on_ray(6)}}}
        providers:
          - {{name: steady, model: openai/steady, api_base: "{sim.api_base}"}}
        suites:
          - {{name: s, kind: latency, prompts: ["a b", "c d"], max_tokens: 12, requests: 60,
              load: {{pattern: concurrency, levels: [6]}}}}
        """
    )
    root = tmp_path / "out"
    before = sim_requests(sim)
    result: dict[str, Any] = {}

    def go() -> None:
        result["cli"] = CliRunner().invoke(
            main, ["run", str(config), "--out", str(root), "--no-progress"]
        )

    thread = threading.Thread(target=go)
    thread.start()
    deadline = time.monotonic() + 120
    while sim_requests(sim) - before < 6 + 12:  # warm-ups and two rounds
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.05)
    cluster.remove_node(doomed, allow_graceful=False)
    thread.join(timeout=240)
    assert not thread.is_alive()
    assert result["cli"].exit_code == 0, result["cli"].output
    rows = pd.read_parquet(root)
    assert sorted(rows["request_index"]) == list(range(60))
    bad = rows[rows["status"] != "ok"][["actor", "status", "error_type", "error_message"]]
    # Re-sent once on a replacement; if Ray places the replacement on the node that is
    # still being declared dead, it dies too and its requests are recorded as worker_lost
    # (the rule: re-sent once or recorded as errors, never lost, never twice).
    assert set(bad["error_type"]) <= {"worker_lost"}, bad.to_dict("records")
    assert len(bad) < 60 // 2, bad.to_dict("records")
    nodes = manifest_of(root)["executor"]
    lost = [n for name, n in nodes["nodes"].items() if name.endswith("/" + doomed.node_id[:8])]
    # SPREAD put some of the six actors on the doomed node; each was replaced once. The
    # coordinator is on the driver's node, which survives.
    assert lost, nodes
    assert nodes["replaced_actors"] == len(lost[0]["actors"])
    coordinator = nodes["nodes"]["coordinator"]
    assert coordinator["node"] == coordinator["driver_node"]
