"""Reports at scale: time and peak RSS of every report command on a 1M-row run, of
``history`` over a year of nightly runs, and a run's RSS as it grows.

    python benchmarks/report_scale.py [--work /tmp/harness-scale] [--steps gen,reports,run]
        [--code DIR ...] [--run-sizes 10000,100000] [--timeout 400] [--label NAME]

Data (generated once, cached under ``--work``, never in the repository):

* ``base``: a real ``harness run`` of ~10k requests against zero-delay simulated
  providers (3 providers; a latency suite and the 48-case ``rag_qa`` suite with
  repeats), so every column is what a real run writes.
* ``big``: two runs ``big-a`` and ``big-b`` of ~1M rows each: the base rows replicated
  ×100 with new request indices, repeats and start times (one replica after the
  other), per-row log-normal jitter on every duration (σ 0.1), written as a real run
  writes them (Parquet parts of 1,024 rows, compacted from the journal, plus the
  manifest). ``big-b`` is 15 % slower on ``sim-b``'s TTFT, so ``diff`` has a change.
* ``year``: 365 runs of the base's ~10k rows, one per day, jittered per day.

Every command runs in a fresh subprocess under ``/usr/bin/time -v`` (wall time and
the child's peak RSS). ``--cache cold,warm`` (the merged step) times each command with no
cached summaries and again after the runs' summaries and one report were cached
(harness/report/summary_cache.py). ``--code`` takes one or more source trees (each goes first on
``PYTHONPATH``); with two, every command runs on each, alternately, and the ratio
second/first is printed, so the before/after figures come from one session on one
(shared, loaded) machine. ``run`` measures ``harness run`` itself at each of
``--run-sizes`` requests: peak RSS of the harness process (``VmHWM``, sampled from
/proc; the simulator is a child process and not counted) and the RSS sampled as it
goes, from which the growth per finished request is fitted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

REPO = Path(__file__).resolve().parents[1]
PROVIDERS = (
    ("sim-a", "seed: 1", "{input_per_mtok: 0.15, output_per_mtok: 0.60}", "eu"),
    ("sim-b", "abstain_rate: 0.3, seed: 2", "{input_per_mtok: 0.05, output_per_mtok: 0.20}", "us"),
    ("sim-c", "abstain_rate: 0.1, seed: 3", "{input_per_mtok: 0.10, output_per_mtok: 0.40}", "eu"),
)
RAG_CASES = 48  # suites/rag_qa/acme_kb.jsonl
PART_ROWS = 1024  # harness/journal.py's flush_rows: what a fast run's parts hold
DURATIONS = ("first_chunk_s", "first_reasoning_s", "ttft_s", "e2e_s", "itl_s", "tpot_s")
REPLICAS = 100
YEAR_RUNS = 365


# --------------------------------------------------------------------------- data


def config_text(requests: int, out: Path) -> str:
    """A zero-delay run of about ``requests`` rows: 3 providers × (latency + rag_qa)."""
    per_provider = max(requests // len(PROVIDERS), RAG_CASES + 1)
    repeats = max(1, round(per_provider * 0.1 / RAG_CASES))
    latency = max(1, per_provider - RAG_CASES * repeats)
    providers = "\n".join(
        f"  - {{name: {name}, simulate: {{ttft_ms: 0, itl_ms: 0, output_tokens: 16, {extra}}},"
        f" pricing: {price}, tags: {{region: {region}}}}}"
        for name, extra, price, region in PROVIDERS
    )
    prompts = '["Say hello.", "Name three colours.", "Capital of France?", "A synonym for fast."]'
    return f"""run: {{name: scale, concurrency: 32, out: {out}}}
providers:
{providers}
suites:
  - {{name: lat, kind: latency, prompts: {prompts}, requests: {latency}, max_tokens: 32}}
  - {{name: rag, kind: rag_qa, dataset: {REPO}/suites/rag_qa/acme_kb.jsonl,
     repeats: {repeats}, max_tokens: 32}}
"""


def env_for(code: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(code)
    env.pop("HARNESS_STRICT_ROWS", None)
    return env


def harness_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", *args]


def real_run(code: Path, work: Path, requests: int, root: Path, run_id: str) -> dict[str, Any]:
    """``harness run`` of about ``requests`` rows; peak RSS and RSS samples of its process."""
    config = work / f"{run_id}.yaml"
    config.write_text(config_text(requests, root))
    shutil.rmtree(root / run_id, ignore_errors=True)
    started = time.perf_counter()
    proc = subprocess.Popen(
        harness_cmd("run", str(config), "--run-id", run_id, "--no-progress"),
        env=env_for(code),
        cwd=code,  # python -m puts the cwd first on sys.path, before PYTHONPATH
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    samples: list[tuple[float, float, int]] = []  # (s, RSS MB, rows on disk or journaled)
    hwm = 0.0
    status = Path(f"/proc/{proc.pid}/status")
    next_sample = 0.0
    while proc.poll() is None:
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
            rss = int(fields["VmRSS"].split()[0]) / 1024
            hwm = max(hwm, int(fields["VmHWM"].split()[0]) / 1024)
        except (OSError, KeyError, ValueError):
            break
        now = time.perf_counter() - started
        if now >= next_sample:
            samples.append((now, rss, _rows_so_far(root / run_id)))
            next_sample = now + 2.0
        time.sleep(0.2)
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"harness run {run_id} failed ({proc.returncode}):\n{err[-3000:]}")
    manifest = json.loads((root / run_id / "_manifest.json").read_text())
    rows = int(manifest.get("rows_written", 0))
    # While sending: before the last rows land (the summary printed at the end reads
    # the run back, which is a report, not the runner).
    sending = [rss for _, rss, done in samples if 0 < done < 0.98 * rows]
    return {
        "requests": rows,
        "wall_s": wall,
        "req_per_s": rows / wall,
        "peak_rss_mb": hwm,
        "sending_rss_mb": max(sending) if sending else None,
        "samples": samples,
        "kb_per_request": _slope_kb(samples),
    }


def _rows_so_far(run_dir: Path) -> int:
    """Rows on disk: parts (1,024 rows each but the last) plus journal lines (approximate)."""
    rows = 0
    for path in run_dir.glob("part-*.parquet"):
        try:
            import pyarrow.parquet as pq

            rows += pq.ParquetFile(path).metadata.num_rows
        except Exception:  # being written
            continue
    for path in run_dir.glob("_journal-*.jsonl"):
        try:
            with path.open("rb") as f:
                rows += f.read().count(b"\n")
        except OSError:
            continue
    return rows


def _slope_kb(samples: list[tuple[float, float, int]]) -> float | None:
    """RSS growth per finished request (KB), fitted over the second half of the run."""
    last = max((rows for _, _, rows in samples), default=0)
    points = [(rows, rss) for _, rss, rows in samples if 0 < rows < 0.98 * last]
    points = points[len(points) // 2 :]
    if len(points) < 3 or points[-1][0] == points[0][0]:
        return None
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    return float(np.polyfit(x, y, 1)[0] * 1024)


def base_table(code: Path, work: Path) -> tuple[pa.Table, dict[str, Any]]:
    """The ~10k rows of one real zero-delay run (made once) and its manifest."""
    root = work / "base"
    done = work / "base.done"
    if not done.exists():
        print("generating the base run (a real zero-delay harness run of ~10k requests)")
        result = real_run(code, work, 10_000, root, "base-10k")
        done.write_text(json.dumps(result))
    import pyarrow.parquet as pq

    parts = sorted((root / "base-10k").glob("part-*.parquet"))
    table = pa.concat_tables([pq.read_table(p) for p in parts])
    manifest = json.loads((root / "base-10k" / "_manifest.json").read_text())
    return table, manifest


def _jittered(
    table: pa.Table, rng: np.random.Generator, *, slow: dict[str, float] | None = None
) -> pa.Table:
    """Every duration × one log-normal factor per row (σ 0.1); speeds ÷ it."""
    factor = np.exp(rng.normal(0.0, 0.1, table.num_rows))
    if slow:
        providers = table.column("provider").to_numpy(zero_copy_only=False)
        for name, scale in slow.items():
            factor = np.where(providers == name, factor * scale, factor)
    columns = {}
    for name in DURATIONS:
        columns[name] = pc.multiply(table.column(name), pa.array(factor))
    columns["output_tps"] = pc.divide(table.column("output_tps"), pa.array(factor))
    for name, column in columns.items():
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


def _shifted(table: pa.Table, k: int, n: int, repeat_step: int, span: timedelta) -> pa.Table:
    """Replica ``k``: new request indices and repeats, started ``k`` spans later."""
    index = table.schema.get_field_index
    table = table.set_column(
        index("request_index"), "request_index", pc.add(table.column("request_index"), k * n)
    )
    table = table.set_column(
        index("repeat"), "repeat", pc.add(table.column("repeat"), k * repeat_step)
    )
    shift = pa.scalar(span * k, pa.duration("us"))
    table = table.set_column(
        index("started_at"), "started_at", pc.add(table.column("started_at"), shift)
    )
    return table


def _with_run_id(table: pa.Table, run_id: str) -> pa.Table:
    index = table.schema.get_field_index("run_id")
    return table.set_column(index, "run_id", pa.array([run_id] * table.num_rows, pa.string()))


def write_run(
    root: Path, run_id: str, table: pa.Table, manifest: dict[str, Any], started: str
) -> None:
    """The rows as a real run leaves them: parts of 1,024 rows, then the manifest."""
    from harness.store.files import write_manifest, write_part
    from harness.store.schema import SCHEMA

    run_dir = root / run_id
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    table = _with_run_id(table, run_id).cast(SCHEMA)
    for number, start in enumerate(range(0, table.num_rows, PART_ROWS)):
        write_part(run_dir / f"part-{number:05d}.parquet", table.slice(start, PART_ROWS))
    write_manifest(
        run_dir,
        {
            **manifest,
            "run_id": run_id,
            "started_at": started,
            "rows_written": table.num_rows,
            "planned_requests": table.num_rows,
        },
    )


def generate(code: Path, work: Path) -> None:
    """The base run, the two 1M-row runs and the year of nightly runs (each made once)."""
    sys.path.insert(0, str(code))
    base, manifest = base_table(code, work)
    n = base.num_rows
    repeat_step = int(pc.max(base.column("repeat")).as_py()) + 1
    starts = base.column("started_at")
    span = (pc.max(starts).as_py() - pc.min(starts).as_py()) + timedelta(seconds=1)
    big_done = work / "big.done"
    if not big_done.exists():
        for run_id, seed, slow in (("big-a", 1, None), ("big-b", 2, {"sim-b": 1.15})):
            started = time.perf_counter()
            rng = np.random.default_rng(seed)
            replicas = [
                _jittered(_shifted(base, k, n, repeat_step, span), rng, slow=slow)
                for k in range(REPLICAS)
            ]
            first = pc.min(starts).as_py() + timedelta(days=1 if run_id == "big-b" else 0)
            table = pa.concat_tables(replicas)
            shift = first - pc.min(starts).as_py()
            table = table.set_column(
                table.schema.get_field_index("started_at"),
                "started_at",
                pc.add(table.column("started_at"), pa.scalar(shift, pa.duration("us"))),
            )
            write_run(work / "big", run_id, table, manifest, first.isoformat())
            print(
                f"wrote {run_id}: {table.num_rows:,} rows in {time.perf_counter() - started:.1f} s"
            )
        big_done.write_text("ok")
    year_done = work / "year.done"
    if not year_done.exists():
        started = time.perf_counter()
        rng = np.random.default_rng(365)
        origin = pc.min(starts).as_py() - timedelta(days=YEAR_RUNS)
        for day in range(YEAR_RUNS):
            shift = origin + timedelta(days=day) - pc.min(starts).as_py()
            table = _jittered(base, rng)
            table = table.set_column(
                table.schema.get_field_index("started_at"),
                "started_at",
                pc.add(table.column("started_at"), pa.scalar(shift, pa.duration("us"))),
            )
            run_id = f"night-{day:03d}"
            write_run(
                work / "year", run_id, table, manifest, (origin + timedelta(days=day)).isoformat()
            )
        print(f"wrote {YEAR_RUNS} runs of {n:,} rows in {time.perf_counter() - started:.1f} s")
        year_done.write_text("ok")


# --------------------------------------------------------------------------- timing


def report_commands(work: Path, merged: bool = False) -> dict[str, list[str]]:
    """Each command on the 1M-row runs (``merged``: in the layout a run now leaves, its
    parts merged into one; else as the benchmark data was written, 1,024-row parts)."""
    suffix = "m" if merged else ""
    big, year, out = work / f"big{suffix}", work / f"year{suffix}", work / "out"
    tag = " [merged]" if merged else ""
    return {
        f"summarize{tag}": ["summarize", str(big), "--run", "big-b"],
        f"leaderboard{tag}": ["leaderboard", str(big), "--run", "big-b"],
        f"diff{tag}": ["diff", str(big), "big-a", "big-b"],
        f"export html{tag}": ["export", str(big), "--run", "big-b", "--to", str(out / "r.html")],
        f"export md{tag}": ["export", str(big), "--run", "big-b", "--to", str(out / "r.md")],
        f"export csv{tag}": ["export", str(big), "--run", "big-b", "--to", str(out / "r.csv")],
        f"export xlsx{tag}": ["export", str(big), "--run", "big-b", "--to", str(out / "r.xlsx")],
        f"history (365 runs){tag}": ["history", str(year), "--metric", "ttft_p50_ms"],
    }


def merge_copies(code: Path, work: Path) -> None:
    """``bigm`` and ``yearm``: copies of the data with each run's parts merged, as the
    journal now leaves a finished run (harness/store/merge.py), merged by ``code``."""
    script = (
        "import sys; from pathlib import Path; from harness.store.merge import merge_parts\n"
        "for d in sys.argv[1:]:\n"
        "    merge_parts(Path(d), min_parts=2)\n"
    )
    for name in ("big", "year"):
        done = work / f"{name}m.done"
        if done.exists():
            continue
        target = work / f"{name}m"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(work / name, target)
        runs = [str(d) for d in sorted(target.iterdir()) if d.is_dir()]
        subprocess.run(
            [sys.executable, "-c", script, *runs], env=env_for(code), cwd=code, check=True
        )
        done.write_text("ok")


def timed(code: Path, args: list[str], timeout: float) -> dict[str, Any]:
    """One command in a fresh process under /usr/bin/time -v: wall s, peak RSS MB, exit code."""
    started = time.perf_counter()
    # A session of its own: on a timeout the whole group goes (time and the harness).
    proc = subprocess.Popen(
        ["/usr/bin/time", "-v", *harness_cmd(*args)],
        env=env_for(code),
        cwd=code,  # python -m puts the cwd first on sys.path, before PYTHONPATH
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"wall_s": None, "rss_mb": None, "rc": None, "timeout": timeout}
    wall = time.perf_counter() - started
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    result: dict[str, Any] = {
        "wall_s": wall,
        "rss_mb": int(rss.group(1)) / 1024 if rss else None,
        "rc": proc.returncode,
    }
    if proc.returncode not in (0, 1):  # diff exits 1 on a regression
        result["error"] = stderr.strip().splitlines()[-12:]
    return result


CACHE_GLOBS = ("*/_summary*.arrow", "*/_trend-diff.arrow")  # harness/report/summary_cache.py


def drop_caches(work: Path) -> None:
    """Remove every cached summary and trend diff from the benchmark's results roots."""
    for root in sorted(work.glob("big*")) + sorted(work.glob("year*")):
        if root.is_dir():
            for pattern in CACHE_GLOBS:
                for path in root.glob(pattern):
                    path.unlink()


def warm_caches(code: Path, work: Path, merged: bool, timeout: float) -> None:
    """What a results root holds after its runs ended and one report was made: each
    run's summary (``harness run`` prints it at the end) and the report's diff of the
    two runs. Not timed; code without the cache leaves nothing."""
    big = work / ("bigm" if merged else "big")
    for run in ("big-a", "big-b"):
        timed(code, ["summarize", str(big), "--run", run], timeout)
    timed(code, ["export", str(big), "--run", "big-b", "--to", str(work / "out" / "w.md")], timeout)


def run_reports(
    codes: list[Path],
    work: Path,
    timeout: float,
    only: list[str] | None,
    merged: bool = False,
    cache: str = "cold",
) -> dict:
    """Every report command on each code tree, alternately. ``cache``: ``cold`` drops
    every cached summary before each command (the first report of a root written by
    code without the cache); ``warm`` fills them first with the same tree."""
    (work / "out").mkdir(exist_ok=True)
    out: dict[str, dict[str, Any]] = {}
    for name, args in report_commands(work, merged).items():
        if only and not any(o in name for o in only):
            continue
        name = f"{name} [{cache}]"
        out[name] = {}
        for code in codes:
            drop_caches(work)
            if cache == "warm" and not name.startswith("history"):
                warm_caches(code, work, merged, timeout)
            result = timed(code, args, timeout)
            out[name][str(code)] = result
            print(f"  {name:<20} {_code_label(code):<28} {_fmt(result)}", flush=True)
    return out


def _code_label(code: Path) -> str:
    return code.name if code != REPO else f"{code.name} (this tree)"


def _fmt(result: dict[str, Any]) -> str:
    if result.get("timeout"):
        return f"> {result['timeout']:.0f} s (timed out)"
    text = f"{result['wall_s']:8.2f} s  {result['rss_mb']:8.0f} MB  rc {result['rc']}"
    if result.get("error"):
        text += "  ERROR: " + " | ".join(result["error"][-3:])
    return text


def print_ratios(results: dict[str, dict[str, Any]], codes: list[Path]) -> None:
    if len(codes) < 2:
        return
    a, b = str(codes[0]), str(codes[1])
    print(
        f"\n| command | {codes[0].name} s | {codes[1].name} s | time × | {codes[0].name} MB"
        f" | {codes[1].name} MB | RSS × |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, by_code in results.items():
        ra, rb = by_code.get(a, {}), by_code.get(b, {})

        def cell(r: dict[str, Any], key: str, fmt: str) -> str:
            if r.get("timeout"):
                return f">{r['timeout']:.0f}" if key == "wall_s" else "?"
            return format(r[key], fmt) if r.get(key) is not None else "?"

        def ratio(key: str) -> str:
            x, y = ra.get(key), rb.get(key)
            if ra.get("timeout") and y and key == "wall_s":
                return f"<{y / ra['timeout']:.3f}"
            return f"{y / x:.3f}" if x and y else "?"

        print(
            f"| {name} | {cell(ra, 'wall_s', '.2f')} | {cell(rb, 'wall_s', '.2f')} |"
            f" {ratio('wall_s')} | {cell(ra, 'rss_mb', '.0f')} | {cell(rb, 'rss_mb', '.0f')} |"
            f" {ratio('rss_mb')} |"
        )


def run_rss(codes: list[Path], work: Path, sizes: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code in codes:
        for size in sizes:
            result = real_run(code, work, size, work / "runs", f"rss-{size}")
            shutil.rmtree(work / "runs" / f"rss-{size}", ignore_errors=True)
            out[f"{code}:{size}"] = result
            slope = result["kb_per_request"]
            print(
                f"  run {size:>9,} requests  {_code_label(code):<28} {result['wall_s']:7.1f} s"
                f"  {result['req_per_s']:6.0f} req/s  peak RSS {result['peak_rss_mb']:6.0f} MB"
                f"  while sending {result['sending_rss_mb'] or 0:6.0f} MB"
                f"  growth {'?' if slope is None else f'{slope:.2f}'} KB/request",
                flush=True,
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/harness-scale"))
    parser.add_argument("--steps", default="gen,reports,merged,run")
    parser.add_argument("--code", type=Path, nargs="+", default=[REPO])
    parser.add_argument("--run-sizes", default="10000,100000")
    parser.add_argument("--timeout", type=float, default=400.0)
    parser.add_argument("--only", default=None, help="comma-separated report names to time")
    parser.add_argument("--label", default="latest", help="results go to WORK/results-LABEL.json")
    parser.add_argument(
        "--cache",
        default="cold,warm",
        help="merged step: cold (no cached summaries), warm (each run's summary and the"
        " report's trend diff cached first), or both",
    )
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    codes = [c.resolve() for c in args.code]
    steps = args.steps.split(",")
    results: dict[str, Any] = {"codes": [str(c) for c in codes], "date": time.ctime()}
    if "gen" in steps:
        generate(codes[-1], work)
    if "reports" in steps:
        print("reports (fresh process each; wall s, peak RSS MB):")
        only = args.only.split(",") if args.only else None
        results["reports"] = run_reports(codes, work, args.timeout, only)
        print_ratios(results["reports"], codes)
    if "merged" in steps:
        # Every tree given (code from before the merge of parts cannot read a merged
        # part's name: give only newer trees then).
        merge_copies(codes[-1], work)
        print("reports on merged parts (the layout a run now leaves):")
        only = args.only.split(",") if args.only else None
        for cache in args.cache.split(","):
            key = f"merged-{cache}"
            results[key] = run_reports(codes, work, args.timeout, only, True, cache)
            print_ratios(results[key], codes)
    if "run" in steps:
        print("harness run against zero-delay simulators (RSS of the harness process):")
        sizes = [int(s) for s in args.run_sizes.split(",")]
        results["run"] = run_rss(codes, work, sizes)
    path = work / f"results-{args.label}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults in {path}")


if __name__ == "__main__":
    main()
