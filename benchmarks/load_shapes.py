"""Load shapes: trace-replay fidelity and the capacity search against a known capacity.

1. **Trace replay.** The shipped sample traces (``tests/data/traces``: harness layout,
   Mooncake, Azure) are replayed at ``--speed`` against a simulated provider; printed per
   trace: requests, send time vs schedule (mean absolute error and p99 of ``sent_s -
   scheduled_s``), and whether each row's output length is its traced one. The baseline,
   in the same run: a constant-rate level at the sample trace's mean rate (its MAE is
   what the client's own timers cost; the ratio says what the trace's bursts add).
2. **Capacity search.** A simulated box serving ``--slots`` requests at once for
   S = ``--service-ms`` each (one-token answers: the answer is written at TTFT) carries at
   most slots / S req/s: the truth. A rate search (constant-rate arrivals, SLO TTFT
   S + 50 ms, ``--goodput``) and a 429 ceiling search (``max_rps``) are run; printed: found
   vs true, the error, levels tried, requests sent, and what a fixed sweep at the same
   resolution would have sent (levels ``start · (1 + resolution)^k`` up to ``max_rate``).

    python benchmarks/load_shapes.py [--speed 2] [--slots 4] [--service-ms 100]
        [--requests 40] [--goodput 0.9] [--max-rps 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TRACES = Path(__file__).resolve().parents[1] / "tests" / "data" / "traces"


def harness_run(config: str, where: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    path = where / "config.yaml"
    path.write_text(config)
    out = where / "out"
    subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(path), "--out", str(out), "--no-progress"],
        check=True,
        capture_output=True,
        text=True,
    )
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return pd.read_parquet(out), json.loads((run_dir / "_manifest.json").read_text())


def replay(args: argparse.Namespace, where: Path) -> None:
    from harness.suites.trace import read_trace

    sample = read_trace(TRACES / "sample.jsonl")
    mean_rate = (len(sample) - 1) / sample[-1].arrival_s * args.speed
    suites = "".join(
        f"""
  - name: {name}
    kind: latency
    load: {{pattern: trace, trace: "{TRACES / file}", speed: {args.speed}}}"""
        for name, file in (
            ("sample", "sample.jsonl"),
            ("mooncake", "mooncake.jsonl"),
            ("azure", "azure.csv"),
        )
    )
    config = f"""
run: {{name: replay, concurrency: 256}}
providers:
  - name: sim
    simulate: {{ttft_ms: 30, itl_ms: 2, output_tokens: 64}}
suites:{suites}
  - name: constant
    kind: latency
    prompts: ["one two three four"]
    max_tokens: 8
    requests: {len(sample)}
    load: {{pattern: rate, levels: [{mean_rate:.3f}]}}
"""
    rows, _ = harness_run(config, where / "replay")
    print(f"trace replay at speed {args.speed:g} (simulated provider, direct transport)")
    print(f"{'suite':>10} {'rows':>5} {'MAE ms':>8} {'p99 ms':>8} {'lengths':>8}")
    baseline = None
    for suite in ("constant", "sample", "mooncake", "azure"):
        group = rows[rows["suite"] == suite]
        error = (group["sent_s"] - group["scheduled_s"]).abs().to_numpy(dtype=float) * 1000
        mae = float(error.mean())
        baseline = mae if suite == "constant" else baseline
        exact = (
            "-"
            if suite == "constant"
            else ("exact" if (group["output_tokens"] == group["max_tokens"]).all() else "DIFFER")
        )
        ratio = "" if suite == "constant" or not baseline else f"  ({mae / baseline:.2f}× baseline)"
        print(
            f"{suite:>10} {len(group):>5} {mae:>8.2f} {np.percentile(error, 99):>8.2f}"
            f" {exact:>8}{ratio}"
        )
    print(f"(baseline 'constant': {mean_rate:.1f} req/s, the sample trace's mean rate)\n")


def capacity(args: argparse.Namespace, where: Path) -> None:
    truth = args.slots / (args.service_ms / 1000)
    slo = args.service_ms + 50
    start, maximum, resolution = truth * 0.3, truth * 5, 0.05
    config = f"""
run: {{name: capacity, concurrency: 1024}}
providers:
  - name: box
    simulate: {{ttft_ms: {args.service_ms}, itl_ms: 0, output_tokens: 1,
                max_concurrency: {args.slots}}}
    max_retries: 0
    pricing: {{per_second: 0.0011}}
  - name: limited
    simulate: {{ttft_ms: 5, itl_ms: 0, output_tokens: 1, max_rps: {args.max_rps}}}
    max_retries: 0
suites:
  - name: search
    kind: latency
    prompts: ["one two three four"]
    max_tokens: 1
    requests: {args.requests}
    load:
      pattern: capacity
      arrivals: rate
      slo: {{ttft_ms: {slo}}}
      goodput: {args.goodput}
      start: {start:.4g}
      max_rate: {maximum:.4g}
      resolution: {resolution}
"""
    _, manifest = harness_run(config, where / "capacity")
    print(
        f"capacity search: constant-rate arrivals, SLO TTFT <= {slo:g} ms for"
        f" {args.goodput:.0%} of {args.requests} requests a level, resolution {resolution:.0%}"
    )
    print(
        f"{'provider':>8} {'true':>7} {'found':>7} {'error':>7} {'levels':>6} {'requests':>8}"
        f" {'sweep':>6} {'ratio':>6}  goodput at found [95% CI]"
    )
    truths = {"box": truth, "limited": float(args.max_rps)}
    for found in manifest["capacity"]:
        true = truths[found["provider"]]
        value = found["found"] or float("nan")
        print(
            f"{found['provider']:>8} {true:>7.2f} {value:>7.2f} {value / true - 1:>+7.1%}"
            f" {found['levels_tried']:>6} {found['requests_sent']:>8} {found['sweep_requests']:>6}"
            f" {found['requests_sent'] / found['sweep_requests']:>6.2f}"
            f"  {found['goodput_at_found']:.3f} [{found['goodput_ci_low']:.3f},"
            f" {found['goodput_ci_high']:.3f}]"
            + (f"; 429s from {found['rate_ceiling']:g} req/s" if found["rate_ceiling"] else "")
        )
        levels = ", ".join(
            f"{lv['level']:g}{'✓' if lv['passed'] else '✗'}"
            + ("(early)" if lv["stopped_early"] else "")
            for lv in found["levels"]
        )
        print(f"{'':>8} levels: {levels}")
    print(
        f"(box: {args.slots} slots × {args.service_ms:g} ms = {truth:g} req/s; limited: 429 beyond"
        f" {args.max_rps} requests in any second, so at L req/s a share {args.max_rps}/L is"
        f" served: the SLO's share holds up to {args.max_rps}/{args.goodput:g} ="
        f" {args.max_rps / args.goodput:.1f} req/s; sweep: start·1.05^k up to max_rate, in full)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=2.0)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--service-ms", type=float, default=100.0)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--goodput", type=float, default=0.9)
    parser.add_argument("--max-rps", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        (where / "replay").mkdir()
        (where / "capacity").mkdir()
        replay(args, where)
        capacity(args, where)


if __name__ == "__main__":
    main()
