"""Capacity at an SLO and trace-replay fidelity, from a run's manifest and rows.

A capacity search (``load.pattern: capacity``, see ``harness/run/capacity.py``) records
in the manifest every level it tried and its answer; the rows of the levels are stored
like any others (``load_level`` ``capacity=<rate>`` or ``capacity-c=<n>``). This module
reads both and says, per suite and provider:

- ``max_rps_at_slo``: the highest request rate at which the SLO held for the stated share
  of requests (a rate search: the rate offered; a concurrency search: the throughput
  measured at the concurrency found, with ``max_concurrency_at_slo`` beside it), and the
  Wilson 95 % interval of the goodput there;
- ``output_tokens_per_s_at_slo``: output tokens per second measured at that level
  (the summary's definition: tokens of the measured requests over their span);
- ``usd_per_1k_at_slo``: with ``per_second`` pricing (a self-hosted box), the box's cost
  while it carries that rate: ``per_second · 1000 / max_rps_at_slo``; with token prices,
  the mean cost of the requests at that level × 1000;
- ``rate_ceiling_rps``: the lowest level at which the provider answered 429: its rate
  ceiling, reported as such, not as errors of the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.report.summary import is_open_loop, send_error
from harness.store.files import read_manifest

COLUMNS = (
    "suite",
    "provider",
    "search",
    "max_rps_at_slo",
    "max_concurrency_at_slo",
    "goodput_at_slo",
    "goodput_ci_low",
    "goodput_ci_high",
    "output_tokens_per_s_at_slo",
    "usd_per_1k_at_slo",
    "cost_basis",
    "lowest_failing",
    "rate_ceiling_rps",
    "rate_limited",
    "levels_tried",
    "requests_sent",
    "sweep_requests",
    "converged",
    "at_maximum",
)


def _per_second(manifest: Mapping[str, Any], provider: str) -> float | None:
    for p in (manifest.get("config") or {}).get("providers", []):
        if p.get("name") == provider:
            value = (p.get("pricing") or {}).get("per_second")
            return float(value) if value is not None else None
    return None


def _level_rows(rows: pd.DataFrame, suite: str, provider: str, label: str) -> pd.DataFrame:
    chosen = rows[
        (rows["suite"] == suite) & (rows["provider"] == provider) & (rows["load_level"] == label)
    ]
    if "warmup" in chosen:
        chosen = chosen[chosen["warmup"].fillna(False).astype(bool) == False]  # noqa: E712
    return chosen


def _throughput(level: pd.DataFrame) -> tuple[float | None, float | None]:
    """(requests/s, output tokens/s) of a level's successful requests over their span."""
    ok = level[level["status"] == "ok"]
    if not len(ok):
        return None, None
    offsets = (ok["started_at"] - ok["started_at"].min()).dt.total_seconds().to_numpy(dtype=float)
    ends = offsets + ok["e2e_s"].to_numpy(dtype=float, na_value=np.nan)
    ends = ends[np.isfinite(ends)]
    span = float(ends.max()) if len(ends) else 0.0
    if span <= 0:
        return None, None
    tokens = ok["output_tokens"].fillna(ok.get("output_tokens_client", np.nan))
    return len(ok) / span, float(tokens.sum()) / span


def capacity_table(rows: pd.DataFrame, manifest: Mapping[str, Any]) -> pd.DataFrame:
    """One line per capacity search of the run (empty without one); see the module doc."""
    out = []
    for found in manifest.get("capacity") or []:
        suite, provider = str(found["suite"]), str(found["provider"])
        label = found.get("found_load_level")
        level = _level_rows(rows, suite, provider, label) if label else rows.iloc[0:0]
        rps, tps = _throughput(level) if len(level) else (None, None)
        rate = found.get("found")
        concurrency = None
        if found.get("search") == "concurrency":
            concurrency, rate = rate, rps  # the rate a closed loop of that size carried
        box = _per_second(manifest, provider)
        if box is not None:
            usd = box * 1000 / rate if rate else None
            basis = "box: per_second × 1000 / rate"
        else:
            ok = level[level["status"] == "ok"] if len(level) else level
            costs = ok["cost_usd"] if len(ok) else pd.Series(dtype=float)
            priced = len(costs) > 0 and bool(costs.notna().all())
            usd = float(costs.mean()) * 1000 if priced else None
            basis = "per request" if priced else "no price"
        out.append(
            {
                "suite": suite,
                "provider": provider,
                "search": found.get("search"),
                "max_rps_at_slo": rate,
                "max_concurrency_at_slo": concurrency,
                "goodput_at_slo": found.get("goodput_at_found"),
                "goodput_ci_low": found.get("goodput_ci_low"),
                "goodput_ci_high": found.get("goodput_ci_high"),
                "output_tokens_per_s_at_slo": tps,
                "usd_per_1k_at_slo": usd,
                "cost_basis": basis,
                "lowest_failing": found.get("lowest_failing"),
                "rate_ceiling_rps": found.get("rate_ceiling"),
                "rate_limited": found.get("rate_limited"),
                "levels_tried": found.get("levels_tried"),
                "requests_sent": found.get("requests_sent"),
                "sweep_requests": found.get("sweep_requests"),
                "converged": found.get("converged"),
                "at_maximum": found.get("at_maximum"),
            }
        )
    return pd.DataFrame(out, columns=list(COLUMNS))


def capacity_notes(table: pd.DataFrame) -> list[str]:
    """One sentence per search: the answer, its confidence, the 429 ceiling, the cost."""
    notes = []
    for line in table.to_dict("records"):
        where = f"{line['suite']} {line['provider']}"
        rate = line["max_rps_at_slo"]
        if rate is None or pd.isna(rate):
            notes.append(f"capacity {where}: the SLO failed at every level tried")
            continue
        ci = (
            f" [95% CI {line['goodput_ci_low']:.3f}, {line['goodput_ci_high']:.3f}]"
            if line["goodput_ci_low"] is not None and not pd.isna(line["goodput_ci_low"])
            else ""
        )
        what = f"max {rate:.4g} req/s at SLO"
        if line["max_concurrency_at_slo"] is not None and not pd.isna(
            line["max_concurrency_at_slo"]
        ):
            what = f"max concurrency {line['max_concurrency_at_slo']:g} at SLO ({rate:.4g} req/s)"
        text = f"capacity {where}: {what} (goodput {line['goodput_at_slo']:.3f}{ci})"
        if line["at_maximum"]:
            text += ", the search's maximum: the capacity may be higher"
        elif line["lowest_failing"] is not None and not pd.isna(line["lowest_failing"]):
            text += f"; fails at {line['lowest_failing']:.4g}"
        if line["rate_ceiling_rps"] is not None and not pd.isna(line["rate_ceiling_rps"]):
            text += (
                f"; rate ceiling: the provider answered 429 from {line['rate_ceiling_rps']:.4g}"
                f" req/s ({int(line['rate_limited'])} refused; the provider's limit, not run"
                " errors)"
            )
        if line["usd_per_1k_at_slo"] is not None and not pd.isna(line["usd_per_1k_at_slo"]):
            text += f"; ${line['usd_per_1k_at_slo']:.4g} per 1k requests at that rate"
        text += (
            f"; {int(line['levels_tried'])} levels, {int(line['requests_sent'])} requests"
            f" (a fixed sweep at the same resolution: {int(line['sweep_requests'])})"
        )
        notes.append(text)
    return notes


def trace_notes(rows: pd.DataFrame) -> list[str]:
    """Send time vs schedule of every trace-replay level (its fidelity)."""
    if "load_level" not in rows or "sent_s" not in rows:
        return []
    notes = []
    # One filter (measured trace rows), not a copy of every measured row first.
    traced_mask = rows["load_level"].fillna("").str.startswith("trace=")
    if "warmup" in rows:
        traced_mask &= rows["warmup"].fillna(False).astype(bool) == False  # noqa: E712
    traced = rows[traced_mask]
    for (suite, level, provider), group in traced.groupby(
        ["suite", "load_level", "provider"], sort=False
    ):
        if not is_open_loop(str(level)):
            continue
        error = send_error(group)
        if error:
            notes.append(
                f"trace replay {suite} {level} {provider}: {len(group)} requests; send time vs"
                f" schedule: mean absolute error {error['send_mae_ms']:.2f} ms,"
                f" p99 {error['send_error_p99_ms']:.2f} ms"
            )
    return notes


def with_capacity(board: pd.DataFrame, capacity: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard with each provider's capacity at SLO (its first search's)."""
    if not len(capacity) or "provider" not in board:
        return board
    first = capacity.drop_duplicates("provider").set_index("provider")
    names = board["provider"].astype(str).str.removesuffix(" (simulated)")
    out = board.copy()
    for column in ("max_rps_at_slo", "output_tokens_per_s_at_slo", "usd_per_1k_at_slo"):
        out[column] = names.map(first[column]).astype(float)
    return out


def load_shape_report(
    root: Path, run_id: str, rows: pd.DataFrame
) -> tuple[pd.DataFrame, list[str]]:
    """A run's capacity table and its notes (capacity answers, trace-replay fidelity)."""
    table = capacity_table(rows, read_manifest(Path(root) / run_id))
    return table, capacity_notes(table) + trace_notes(rows)
