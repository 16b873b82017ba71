"""A run's memory as it grows: peak RSS of ``harness run`` at 10k, 100k and 1M requests.

    python benchmarks/run_rss.py [--code /work/wt/base0 .] [--sizes 10000,100000]
        [--big 1000000 --big-code .] [--work /tmp/harness-run-rss]
    python benchmarks/run_rss.py --trace 10000,50000   # what grows, by tracemalloc
    python benchmarks/run_rss.py --plan-only 10000,1000000   # the plan alone, nothing sent
    python benchmarks/run_rss.py --merge-only 100000,300000 --code /work/wt/base5 .
        [--source /tmp/harness-scale/bigm/big-a/part-00000-00976.parquet]  # the close's merge

Each run is one zero-delay latency run (2 simulated providers x 2 concurrency levels,
16 and 32, so ``size / 4`` requests a level) executed by ``harness.run.session.execute``
in a fresh process whose ``PYTHONPATH`` is the code tree under test. Printed per run:
requests/s, the process's peak RSS (``VmHWM`` read by the process itself when the run
returns: the end-of-run summary a CLI prints reads the rows back, which is a report, not
the runner; the simulator is a child process and not counted; it includes the close:
the last compaction and the merge of the parts into one, which holds a row group of
16,384 rows), the largest RSS sampled while sending (until 98 % of the rows are on disk),
the largest sampled from then on (the close: the last compactions and the merge; a
sample every ``size / 90,000`` s, at least 1 s, so a short merge can fall between two),
and the growth per finished request fitted over the second half of the sending; the
sending RSS is fitted linearly over the sizes and extrapolated to 1M. With two code
trees every size runs on each, alternately, and the ratio second/first is printed (one
session, one loaded machine).
``--big`` runs one more size on ``--big-code`` only (the 1M run: ~11 min at 1,500 req/s).

``--plan-only`` plans each size and iterates every request (as a run sends them) without
sending anything, and prints that process's peak RSS: the plan's share of a run's memory.

``--merge-only`` splits the first rows of ``--source`` (a merged part) into parts of
1,024 rows, as the journal leaves a fast run, and merges a copy of them in a fresh
process per code tree (after importing what a run imports): that process's peak RSS
before and after the merge, the Arrow pool's peak (``max_memory``), the time, and
whether the merged files are byte-identical across the trees.

``--trace a,b`` runs ``b`` requests in this process under ``tracemalloc`` and prints
the 15 source lines whose allocations grew most between the ``a``-th and ``b``-th row.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BASE = Path("/work/wt/base0")

DRIVER = """
import json, sys
from pathlib import Path
from harness.config.spec import load_config
from harness.run.session import execute
spec = load_config(sys.argv[1])
result = execute(spec, out=Path(sys.argv[2]), run_id=sys.argv[3], show_progress=False)
status = dict(l.split(":", 1) for l in Path("/proc/self/status").read_text().splitlines())
import harness
print(json.dumps({"status": result.status, "hwm_kb": int(status["VmHWM"].split()[0]),
                  "rows": result.outcome.finished if result.outcome else 0,
                  "harness": harness.__file__}))
"""

PLAN_DRIVER = """
import json, sys, time
from pathlib import Path
from harness.config.spec import load_config
from harness.run.plan import build_plan
spec = load_config(sys.argv[1])
started = time.perf_counter()
plan = build_plan(spec)
n = sum(1 for phase in plan for _ in phase.requests)  # every request, as a run sends them
status = dict(l.split(":", 1) for l in Path("/proc/self/status").read_text().splitlines())
import harness
print(json.dumps({"hwm_kb": int(status["VmHWM"].split()[0]), "requests": n,
                  "s": time.perf_counter() - started, "harness": harness.__file__}))
"""


def config_text(requests: int, out: Path) -> str:
    """About ``requests`` zero-delay requests: 2 providers x 2 levels x requests / 4."""
    per_level = max(1, requests // 4)
    providers = "\n".join(
        f"  - {{name: sim-{p}, simulate: {{ttft_ms: 0, itl_ms: 0, output_tokens: 16}}}}"
        for p in "ab"
    )
    return f"""run: {{name: rss, concurrency: 64, warmup_requests: 1, out: {out}}}
providers:
{providers}
suites:
  - {{name: lat, kind: latency, prompts: ["Say hello.", "Name three colours.",
     "Capital of France?", "A synonym for fast."], requests: {per_level}, max_tokens: 32,
     load: {{pattern: concurrency, levels: [16, 32]}}}}
"""


def rows_so_far(run_dir: Path) -> int:
    """Rows on disk: parts' row counts plus journal lines (approximate while writing)."""
    import pyarrow.parquet as pq

    rows = 0
    for path in run_dir.glob("part-*.parquet"):
        try:
            rows += pq.ParquetFile(path).metadata.num_rows
        except Exception:  # being written or merged
            continue
    for path in run_dir.glob("_journal-*.jsonl"):
        try:
            rows += path.read_bytes().count(b"\n")
        except OSError:
            continue
    return rows


def one_run(code: Path, work: Path, requests: int) -> dict[str, Any]:
    """One run of ``requests`` on ``code``: peak RSS, RSS samples, rate."""
    root = work / "runs"
    run_id = f"rss-{requests}"
    shutil.rmtree(root / run_id, ignore_errors=True)
    config = work / f"{run_id}.yaml"
    config.write_text(config_text(requests, root))
    env = dict(os.environ, PYTHONPATH=str(code))
    env.pop("HARNESS_STRICT_ROWS", None)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(config), str(root), run_id],
        env=env,
        cwd=work,  # ``-c`` puts the current directory first on sys.path, before PYTHONPATH
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    samples: list[tuple[float, float, int]] = []  # (s, RSS MB, rows)
    status = Path(f"/proc/{proc.pid}/status")
    every = max(1.0, requests / 1500 / 60)  # about 60 samples a run
    next_at = 0.0
    while proc.poll() is None:
        now = time.perf_counter() - started
        if now >= next_at:
            try:
                fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
                rss = int(fields["VmRSS"].split()[0]) / 1024
            except (OSError, KeyError, ValueError):
                break
            samples.append((now, rss, rows_so_far(root / run_id)))
            next_at = now + every
        time.sleep(0.2)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"run {run_id} on {code} failed ({proc.returncode}):\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    shutil.rmtree(root / run_id, ignore_errors=True)
    assert Path(result["harness"]).is_relative_to(code), (result["harness"], code)
    rows = int(result["rows"])
    # While sending: up to the first sample with 98 % of the rows. Not every sample
    # below 98 %: while the parts are merged at close, counting them dips (a part is
    # deleted between a glob and its read), and the merge is not the sender.
    sending: list[float] = []
    closing: list[float] = []  # from that sample on: the last compactions and the merge
    for _, rss, done in samples:
        if closing or done >= 0.98 * rows:
            closing.append(rss)
        elif done > 0:
            sending.append(rss)
    return {
        "code": str(code),
        "requests": rows,
        "wall_s": wall,
        "req_per_s": rows / wall,
        "peak_rss_mb": result["hwm_kb"] / 1024,
        "sending_rss_mb": max(sending) if sending else None,
        "close_rss_mb": max(closing) if closing else None,
        "kb_per_request": slope_kb(samples, rows),
        "samples": samples,
    }


MERGE_DRIVER = """
import json, sys, time
from pathlib import Path
import pyarrow as pa
import harness, harness.run.session  # what a run's process has imported when it closes
from harness.store.merge import merge_parts
def hwm():
    status = dict(l.split(":", 1) for l in Path("/proc/self/status").read_text().splitlines())
    return int(status["VmHWM"].split()[0])
before = hwm()
started = time.perf_counter()
merged = merge_parts(Path(sys.argv[1]))
print(json.dumps({"before_kb": before, "hwm_kb": hwm(), "s": time.perf_counter() - started,
                  "pool_max": pa.default_memory_pool().max_memory(), "merged": str(merged),
                  "harness": harness.__file__}))
"""


def split_source(source: Path, rows: int, into: Path) -> int:
    """The first ``rows`` rows of ``source`` as parts of 1,024 rows in ``into``; how many."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    done = parts = 0
    for batch in pq.ParquetFile(source).iter_batches(batch_size=1024):
        table = pa.Table.from_batches([batch]).slice(0, rows - done)
        pq.write_table(table, into / f"part-{parts:05d}.parquet", compression="zstd")
        done, parts = done + table.num_rows, parts + 1
        if done >= rows:
            break
    return parts


def merge_only(code: Path, parts: Path, work: Path) -> dict[str, Any]:
    """Merge a copy of ``parts`` in a fresh process on ``code``."""
    run_dir = work / "merge" / code.name
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(parts, run_dir)
    result = _drive(code, work, MERGE_DRIVER, run_dir)
    result["bytes"] = Path(result["merged"]).read_bytes()
    return result


def plan_only(code: Path, work: Path, requests: int) -> dict[str, Any]:
    """Peak RSS of planning ``requests`` and iterating every one (nothing sent)."""
    config = work / f"plan-{requests}.yaml"
    config.write_text(config_text(requests, work / "runs"))
    return _drive(code, work, PLAN_DRIVER, config)


def _drive(code: Path, work: Path, script: str, arg: Path) -> dict[str, Any]:
    """Run a driver ``script`` on ``arg`` in a fresh process on ``code``; its JSON line."""
    out = subprocess.run(
        [sys.executable, "-c", script, str(arg)],
        env=dict(os.environ, PYTHONPATH=str(code)),
        cwd=work,  # ``-c`` puts the current directory first on sys.path, before PYTHONPATH
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert Path(result["harness"]).is_relative_to(code), (result["harness"], code)
    return result


def slope_kb(samples: list[tuple[float, float, int]], rows: int) -> float | None:
    """RSS growth per finished request (KB), least squares over the second half of the
    sending (up to the first sample with 98 % of the rows)."""
    points: list[tuple[int, float]] = []
    for _, rss, n in samples:
        if n >= 0.98 * rows:
            break
        if n > 0:
            points.append((n, rss))
    points = points[len(points) // 2 :]
    if len(points) < 3 or points[-1][0] == points[0][0]:
        return None
    mx = sum(n for n, _ in points) / len(points)
    my = sum(r for _, r in points) / len(points)
    sxx = sum((n - mx) ** 2 for n, _ in points)
    sxy = sum((n - mx) * (r - my) for n, r in points)
    return sxy / sxx * 1024


def line(result: dict[str, Any]) -> str:
    slope = result["kb_per_request"]
    return (
        f"{result['requests']:>9,} req  {result['wall_s']:7.1f} s  {result['req_per_s']:6.0f} req/s"
        f"  peak RSS {result['peak_rss_mb']:6.0f} MB"
        f"  while sending {result['sending_rss_mb'] or 0:6.0f} MB"
        f"  at close {result['close_rss_mb'] or 0:6.0f} MB"
        f"  growth {'?' if slope is None else f'{slope:6.3f}'} KB/req"
    )


def label(code: Path) -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(code), "log", "-1", "--format=%h"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        rev = ""
    return f"{code.name}@{rev}" if rev else code.name


def trace(first: int, last: int) -> None:
    """Run ``last`` requests here under tracemalloc; print what grew from row ``first``."""
    import tracemalloc

    from harness.config.spec import load_config
    from harness.run.session import execute
    from harness.store import journal

    snapshots: dict[int, tracemalloc.Snapshot] = {}
    add = journal.JournalWriter.add
    seen = [0]

    def counting(self: journal.JournalWriter, row: Any) -> None:
        add(self, row)
        seen[0] += 1
        if seen[0] in (first, last - 100):
            snapshots[seen[0]] = tracemalloc.take_snapshot()

    journal.JournalWriter.add = counting  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "c.yaml"
        config.write_text(config_text(last, Path(tmp) / "runs"))
        spec = load_config(config)
        tracemalloc.start(1)
        execute(spec, out=Path(tmp) / "runs", run_id="trace", show_progress=False)
        tracemalloc.stop()
    a, b = snapshots[first], snapshots[last - 100]
    grown = b.compare_to(a, "lineno")
    total = sum(d.size_diff for d in grown)
    print(f"tracemalloc: {total / 1e6:+.2f} MB from row {first:,} to {last - 100:,}")
    for d in grown[:15]:
        print(f"  {d.size_diff / 1e3:+9.1f} kB {d.count_diff:+8d} blocks  {d.traceback[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", type=Path, nargs="+", default=[BASE, REPO])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--big", type=int, default=None, help="one more size, on --big-code")
    parser.add_argument("--big-code", type=Path, default=REPO)
    parser.add_argument("--work", type=Path, default=Path("/tmp/harness-run-rss"))
    parser.add_argument("--trace", default=None, help="FIRST,LAST: tracemalloc growth")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--plan-only", default=None, help="SIZES: peak RSS of the plan alone")
    parser.add_argument("--merge-only", default=None, help="SIZES: peak RSS of the merge alone")
    parser.add_argument(
        "--source",
        type=Path,
        default=Path("/tmp/harness-scale/bigm/big-a/part-00000-00976.parquet"),
        help="--merge-only: the part whose first rows are split and merged",
    )
    args = parser.parse_args()
    if args.trace:
        first, last = (int(x) for x in args.trace.split(","))
        trace(first, last)
        return
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    codes = [c.resolve() for c in args.code]
    if args.merge_only:
        for size in (int(s) for s in args.merge_only.split(",")):
            parts = work / f"merge-src-{size}"
            count = split_source(args.source, size, parts)
            merges = [merge_only(code, parts, work) for code in codes]
            for code, m in zip(codes, merges, strict=True):
                print(
                    f"  merge only {label(code):<24} {size:>9,} rows, {count} parts"
                    f"  {m['s']:6.1f} s  peak RSS {m['before_kb'] / 1024:4.0f} ->"
                    f" {m['hwm_kb'] / 1024:4.0f} MB  Arrow pool peak"
                    f" {m['pool_max'] / 2**20:5.1f} MB",
                    flush=True,
                )
            if len(merges) == 2:
                a, b = merges
                print(
                    f"  ratio: peak RSS {b['hwm_kb'] / a['hwm_kb']:.2f}, over the imports"
                    f" {(b['hwm_kb'] - b['before_kb']) / (a['hwm_kb'] - a['before_kb']):.2f},"
                    f" time {b['s'] / a['s']:.2f}; merged files"
                    f" {'byte-identical' if a['bytes'] == b['bytes'] else 'DIFFER'}",
                    flush=True,
                )
            shutil.rmtree(parts, ignore_errors=True)
        return
    if args.plan_only:
        for size in (int(s) for s in args.plan_only.split(",")):
            plans = [plan_only(code, work, size) for code in codes]
            for code, p in zip(codes, plans, strict=True):
                print(
                    f"  plan only {label(code):<24} {p['requests']:>9,} requests"
                    f"  {p['s']:6.1f} s  peak RSS {p['hwm_kb'] / 1024:6.0f} MB",
                    flush=True,
                )
            if len(plans) == 2:
                print(f"  ratio: peak RSS {plans[1]['hwm_kb'] / plans[0]['hwm_kb']:.2f}")
        return
    results: list[dict[str, Any]] = []
    for size in (int(s) for s in args.sizes.split(",")):
        by_code = []
        for code in codes:
            result = one_run(code, work, size)
            by_code.append(result)
            results.append(result)
            print(f"  {label(code):<24} {line(result)}", flush=True)
        if len(by_code) == 2:
            a, b = by_code
            print(
                f"  ratio {label(codes[1])}/{label(codes[0])}: peak RSS"
                f" {b['peak_rss_mb'] / a['peak_rss_mb']:.2f}, while sending"
                f" {(b['sending_rss_mb'] or 0) / (a['sending_rss_mb'] or 1):.2f},"
                f" req/s {b['req_per_s'] / a['req_per_s']:.2f}",
                flush=True,
            )
    if args.big:
        result = one_run(args.big_code.resolve(), work, args.big)
        results.append(result)
        print(f"  {label(args.big_code.resolve()):<24} {line(result)}", flush=True)
    for code in codes:  # RSS while sending = a + b * requests, from this code's runs
        mine = [r for r in results if r["code"] == str(code) and r["sending_rss_mb"]]
        if len(mine) >= 2:
            xs = [r["requests"] for r in mine]
            ys = [r["sending_rss_mb"] for r in mine]
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
                (x - mx) ** 2 for x in xs
            )
            a = my - b * mx
            print(
                f"  {label(code):<24} RSS while sending, fit: {a:.0f} MB"
                f" + {b * 1024:.3f} KB/request"
                f" -> 1M requests: {a + b * 1e6:.0f} MB (fitted on {len(mine)} sizes)"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
