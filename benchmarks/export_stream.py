"""The request rows' export alone (a :class:`RowStream` to CSV and XLSX), without the
summary and leaderboard that ``harness export`` computes first: wall time and peak RSS of a
fresh process per format and size, so the figures are the writers' own.

    python benchmarks/export_stream.py [--root /tmp/harness-scale/bigm] [--run big-b]
        [--sizes 100000,1000000] [--formats csv,xlsx] [--code DIR ...] [--timeout 400]

Memory is flat when the 1M-row figure is the 100k-row one plus the process's fixed cost.
The data is ``benchmarks/report_scale.py``'s (``bigm``: two runs of ~1M rows, merged).
With two ``--code`` trees each command runs on both and the ratio second/first is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

SNIPPET = """
import sys, itertools
from pathlib import Path
from harness.report.export import Report, RowStream, export
root, run, rows, dest = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
import harness
print(harness.__file__, file=sys.stderr)
try:
    from harness.report.build import _request_stream  # this tree: Arrow batches
    whole = _request_stream(root, run, rows)
    def tables():
        left = rows
        for t in whole.tables():
            if left <= 0:
                break
            yield t.slice(0, left)
            left -= t.num_rows
    stream = RowStream.of_tables(tables, rows)
except ImportError:  # main before this branch: DataFrame batches
    from harness.report.summary import frame_batches
    def batches():
        left = rows
        for f in frame_batches(root, [run]):
            if left <= 0:
                break
            yield f.iloc[:left]
            left -= len(f)
    stream = RowStream(batches, rows)
export(Report("bench", [run], {"requests": stream}), dest)
"""


def timed(code: Path, args: list[str], timeout: float) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(code))
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["/usr/bin/time", "-v", sys.executable, "-c", SNIPPET, *args],
        env=env,
        cwd=code,  # python -c puts the cwd first on sys.path, before PYTHONPATH
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"timeout": timeout}
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    out: dict[str, Any] = {
        "wall_s": time.perf_counter() - started,
        "rss_mb": int(rss.group(1)) / 1024 if rss else None,
        "rc": proc.returncode,
    }
    if proc.returncode:
        out["error"] = err.strip().splitlines()[-5:]
    return out


def show(result: dict[str, Any]) -> str:
    if "timeout" in result:
        return f"> {result['timeout']:.0f} s (timed out)"
    text = f"{result['wall_s']:8.1f} s  {result['rss_mb']:7.0f} MB  rc {result['rc']}"
    return text + ("  ERROR " + " | ".join(result["error"]) if result.get("error") else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/harness-scale/bigm"))
    parser.add_argument("--run", default="big-b")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--code", type=Path, nargs="+", default=[REPO])
    parser.add_argument("--timeout", type=float, default=400)
    parser.add_argument("--out", type=Path, default=Path("/tmp/harness-scale/out"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[str, int, Path], dict[str, Any]] = {}
    for extension in args.formats.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            for code in args.code:
                dest = args.out / f"stream-{size}.{extension}"
                result = timed(code, [str(args.root), args.run, str(size), str(dest)], args.timeout)
                if dest.exists():
                    result["mb_written"] = dest.stat().st_size / 1e6
                    dest.unlink()
                results[(extension, size, code)] = result
                line = f"  {extension:<5} {size:>9,} rows  {code.name:<14} {show(result)}"
                print(line, flush=True)
    if len(args.code) == 2:
        a, b = args.code
        print("\n| format | rows | wall s (a → b) | peak RSS MB (a → b) |")
        print("| --- | ---: | ---: | ---: |")
        for (extension, size, code), rb in results.items():
            if code != b:
                continue
            ra = results[(extension, size, a)]
            wall_a = f">{ra['timeout']:.0f}" if "timeout" in ra else f"{ra['wall_s']:.1f}"
            rss_a = "?" if "timeout" in ra else f"{ra['rss_mb']:.0f}"
            print(
                f"| {extension} | {size:,} | {wall_a} → {rb.get('wall_s', 0):.1f} |"
                f" {rss_a} → {rb.get('rss_mb', 0):.0f} |"
            )


if __name__ == "__main__":
    main()
