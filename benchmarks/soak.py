"""Soak run: 10 % injected faults of every class, a SIGKILL mid-run, then --resume.

Prints: requests planned, rows written, rows lost (must be 0), duplicate rows
(must be 0), the error types seen, and the resume-after-SIGKILL result.

    python benchmarks/soak.py [--requests 2000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from harness.errors import StoreError
from harness.sim.profile import FAULTS
from harness.store.parts import read_runs


def config_text(requests: int, concurrency: int) -> str:
    share = 0.10 / len(FAULTS)  # 10 % of requests fault, spread over every class
    faults = ", ".join(f"{name}: {share:.5f}" for name in FAULTS)
    return f"""
run: {{name: soak, concurrency: {concurrency}, flush_s: 0.5}}
providers:
  - name: faulty
    simulate: {{ttft_ms: 20, itl_ms: 5, output_tokens: 16, jitter: 0.2, hang_s: 3,
               retry_after_s: 0.05, faults: {{{faults}}}, seed: 11}}
    timeout_s: 2.0
    first_token_timeout_s: 0.5
    max_retries: 1
    retry_base_s: 0.05
    concurrency: {concurrency}
suites:
  - {{name: soak, kind: latency, prompts: ["one two three four five six"], requests: {requests},
     max_tokens: 32}}
"""


def harness(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def check(rows: pd.DataFrame, planned: int) -> dict[str, object]:
    indices = rows["request_index"]
    return {
        "planned": planned,
        "rows": len(rows),
        "lost": planned - indices.nunique(),
        "duplicates": int(indices.duplicated().sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "soak.yaml"
        config.write_text(config_text(args.requests, args.concurrency))

        # 1. A full run with faults.
        root = Path(tmp) / "full"
        t = time.perf_counter()
        proc = harness("run", str(config), "--out", str(root), "--run-id", "full")
        proc.communicate()
        elapsed = time.perf_counter() - t
        rows = pd.read_parquet(root)
        manifest = json.loads((root / "full" / "_manifest.json").read_text())
        print(f"full run: {elapsed:.1f} s, exit {proc.returncode}, {check(rows, args.requests)}")
        print(f"  status: {rows['status'].value_counts().to_dict()}")
        print(f"  error types: {rows['error_type'].value_counts().to_dict()}")
        print(f"  retries: {manifest.get('retries')}, attempts>1: {(rows['attempts'] > 1).sum()}")

        # 2. SIGKILL at about 40 %, then resume.
        root = Path(tmp) / "killed"
        proc = harness("run", str(config), "--out", str(root), "--run-id", "killed")
        while True:
            time.sleep(0.2)
            with contextlib.suppress(StoreError):  # nothing journaled yet
                if len(read_runs(root, ["killed"])) >= 0.4 * args.requests:
                    break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Parts and the journal: every row that finished before the kill.
        before = read_runs(root, ["killed"]).to_pandas()
        print(
            f"SIGKILL: {len(before)} rows readable after the kill"
            f" ({len(pd.read_parquet(root))} of them compacted into parts), "
            f"{int(before['request_index'].duplicated().sum())} duplicates"
        )
        resumed = harness("run", str(config), "--out", str(root), "--resume", "killed")
        resumed.communicate()
        after = pd.read_parquet(root)
        manifest = json.loads((root / "killed" / "_manifest.json").read_text())
        print(
            f"resume: exit {resumed.returncode}, sent {manifest['resumes'][-1]['to_send']}"
            f" (= planned − rows before: {args.requests - len(before)}),"
            f" merged {check(after, args.requests)}, status {manifest['status']}"
        )


if __name__ == "__main__":
    main()
