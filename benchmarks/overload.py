"""Overload: open-loop arrivals at 1×, 2× and 4× the capacity of a capped provider.

A simulated provider with fixed timings (no jitter) behind ``concurrency: C``
serves one request in S = TTFT + ITL × (tokens - 1), so at most C / S
requests per second. The same run measures that capacity first (a closed loop
of C workers: the baseline), then offers ``rate`` arrivals at multiples of the
nominal capacity. Printed per level: offered vs achieved (sent) request rate,
achieved / measured capacity, queue wait p50 / p99 beside the hand-computed
p50 of a perfect C-server queue (request i sent at floor(i / C) × S, queued
max(0, that - i / offered)), the provider's TTFT p50 and the TTFT users see
(from the scheduled arrival), and whether the summary marked the level over
capacity.

    python benchmarks/overload.py [--concurrency 4] [--ttft-ms 45] [--itl-ms 5]
        [--tokens 32] [--requests 100] [--factors 1,2,4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from harness.report.summary import summarize


def config_text(args: argparse.Namespace, rates: list[float]) -> str:
    levels = ", ".join(f"{r:g}" for r in rates)
    return f"""
run: {{name: overload, concurrency: 256}}
providers:
  - name: capped
    simulate: {{ttft_ms: {args.ttft_ms}, itl_ms: {args.itl_ms}, output_tokens: {args.tokens}}}
    concurrency: {args.concurrency}
suites:
  - name: capacity
    kind: latency
    prompts: ["one two three four"]
    max_tokens: {args.tokens}
    requests: {args.requests}
    load: {{pattern: concurrency, levels: [{args.concurrency}]}}
  - name: offered
    kind: latency
    prompts: ["one two three four"]
    max_tokens: {args.tokens}
    requests: {args.requests}
    load: {{pattern: rate, levels: [{levels}]}}
"""


def send_rate(rows: pd.DataFrame) -> float:
    """(n - 1) / span of the send moments: the summary's achieved rate."""
    sent = rows["sent_s"].dropna()
    return (len(sent) - 1) / float(sent.max() - sent.min())


def ideal_queue_p50(n: int, concurrency: int, service_s: float, offered: float) -> float:
    """Median queue wait of a perfect C-server queue with a deterministic service time."""
    i = np.arange(n)
    return float(np.median(np.maximum(0.0, (i // concurrency) * service_s - i / offered)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--ttft-ms", type=float, default=45.0)
    parser.add_argument("--itl-ms", type=float, default=5.0)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--factors", default="1,2,4")
    args = parser.parse_args()
    service_s = (args.ttft_ms + args.itl_ms * (args.tokens - 1)) / 1000
    capacity = args.concurrency / service_s
    factors = [float(f) for f in args.factors.split(",")]
    rates = [round(capacity * f, 3) for f in factors]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "overload.yaml"
        config.write_text(config_text(args, rates))
        out = Path(tmp) / "out"
        command = [sys.executable, "-m", "harness.cli", "run", str(config), "--out", str(out)]
        done = subprocess.run(
            [*command, "--no-progress"],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            sys.exit(f"harness run failed:\n{done.stderr}")
        rows = pd.read_parquet(out)
    rows = rows[~rows["warmup"].fillna(False).astype(bool)]
    table = summarize(rows).set_index("load_level")
    measured = send_rate(rows[rows["suite"] == "capacity"])
    print(
        f"provider: concurrency {args.concurrency}, service {service_s * 1000:.0f} ms"
        f" -> nominal capacity {capacity:.2f} req/s; measured (closed loop,"
        f" c={args.concurrency}): {measured:.2f} req/s; {args.requests} requests per level\n"
    )
    head = (
        "| load | offered req/s | achieved req/s | achieved / measured capacity"
        " | queue p50 ms (ideal) | queue p99 ms | provider TTFT p50 ms | user TTFT p50 ms"
        " | over capacity |"
    )
    print(head)
    print("|" + " --- |" * head.count(" | ") + " --- |")
    for factor, rate in zip(factors, rates, strict=True):
        line = table.loc[f"rate={rate:g}"]
        ideal = ideal_queue_p50(args.requests, args.concurrency, service_s, rate) * 1000
        print(
            f"| {factor:g}× | {line['offered_rps']:.2f} | {line['achieved_rps']:.2f}"
            f" | {line['achieved_rps'] / measured:.2f} | {line['queue_wait_p50_ms']:.0f}"
            f" ({ideal:.0f}) | {line['queue_wait_p99_ms']:.0f} | {line['ttft_p50_ms']:.1f}"
            f" | {line['user_ttft_p50_ms']:.0f} | {'yes' if line['over_capacity'] else 'no'} |"
        )


if __name__ == "__main__":
    main()
