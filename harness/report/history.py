"""One summary metric over many runs, in start-time order (:func:`history`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from harness.report.compare import (
    base_name,
)
from harness.report.history_fast import fast_series
from harness.report.summary import summarize


def history(
    rows: pd.DataFrame | Iterable[pd.DataFrame],
    metric: str,
    provider: str | None = None,
    *,
    slos: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> pd.DataFrame:
    """One summary metric (a column of :func:`summarize`) over many runs.

    Each run is summarised on its own (with ``slos[run_id]``, e.g. from
    :func:`harness.report.summary.run_slos`, so that ``goodput`` exists); its start time
    is the earliest ``started_at`` of its rows. ``provider`` matches the name with or
    without ``" (simulated)"``. A series (suite, load level, provider) where the metric is
    NaN in every run is left out; a NaN in some runs stays, as a gap (e.g. a run without
    a successful request).

    Returns:
        Columns ``run_id, started_at, provider, suite, load_level, value``, ordered by
        start time (then run id, suite, load level, provider).

    ``rows`` may also be the runs one DataFrame at a time (each the rows of one run),
    so that a year of nightly runs is never in memory at once; ``provider`` is then
    checked against the providers of every run as they come.

    The metrics of :data:`~harness.report.history_fast.FAST_METRICS` (latency
    percentiles, counts, cost) are computed for every run in one pass over a few columns
    (the same values as each run's summary); the others summarise each run.

    Raises:
        ValueError: for an unknown provider, or a metric that no run's summary has.
    """
    columns = ["run_id", "started_at", "provider", "suite", "load_level", "value"]
    name = None if provider is None else base_name(provider)
    known: set[str] = set()
    if isinstance(rows, pd.DataFrame):
        if name is not None:
            known = {str(p) for p in rows["provider"].dropna().unique()}
            if name not in known:
                listed = ", ".join(sorted(known))
                raise ValueError(f"unknown provider {provider!r}; known: {listed}")
            rows = rows[rows["provider"] == name]
        if rows.empty:
            return pd.DataFrame(columns=columns)
        runs: Iterable[tuple[Any, pd.DataFrame]] = rows.groupby("run_id", sort=False)
    else:
        runs = ((frame["run_id"].iloc[0], frame) for frame in rows if len(frame))
    pieces = []
    available: set[str] = set()
    # Intervals cost most of a summary; a series of point values needs none.
    bounds = metric.endswith(("_ci_low", "_ci_high"))
    seen = False
    if isinstance(rows, pd.DataFrame):
        # Every run at once, for the metrics that need no summary (history_fast).
        whole = fast_series(rows, metric)
        if whole is not None:
            runs, seen = (), True
            pieces += whole
    for run_id, all_rows in runs:
        run_rows = all_rows
        if name is not None and not isinstance(rows, pd.DataFrame):
            known.update(str(p) for p in all_rows["provider"].dropna().unique())
            run_rows = all_rows[all_rows["provider"] == name]
            if run_rows.empty:
                continue
        seen = True
        piece = fast_series(run_rows, metric)
        if piece is not None:
            pieces += piece
            continue
        table = summarize(run_rows, (slos or {}).get(str(run_id)), intervals=bounds)
        available.update(str(c) for c in table.columns)
        if metric not in table.columns:
            continue
        pieces.append(
            pd.DataFrame(
                {
                    "run_id": str(run_id),
                    "started_at": run_rows["started_at"].min(),
                    "provider": table["provider"].astype(str).to_numpy(),
                    "suite": table["suite"].astype(str).to_numpy(),
                    "load_level": table["load_level"].astype(str).to_numpy(),
                    "value": pd.to_numeric(table[metric], errors="coerce").to_numpy(float),
                }
            )
        )
    if name is not None and name not in known and not isinstance(rows, pd.DataFrame):
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(sorted(known))}")
    if not seen:
        return pd.DataFrame(columns=columns)
    if not pieces:
        have = ", ".join(sorted(available))
        raise ValueError(f"unknown metric {metric!r}; the summary has: {have}")
    series = pd.concat(pieces, ignore_index=True)
    defined = series.groupby(["provider", "suite", "load_level"])["value"].transform(
        lambda v: v.notna().any()
    )
    series = series[defined.astype(bool)]
    series = series.sort_values(
        ["started_at", "run_id", "suite", "load_level", "provider"], kind="stable"
    )
    return series[columns].reset_index(drop=True)


TREND_METRICS = (
    ("exact_match_abstain", "quality (exact match, abstain ok)"),
    ("ttft_p50_ms", "TTFT p50 (ms)"),
    ("e2e_p50_ms", "E2E p50 (ms)"),
    ("usd_per_1k_requests", "$ per 1k requests"),
)
"""The headline metrics the report follows over runs: (summary column, axis label)."""
MAX_TREND_RUNS = 30


def same_config_runs(root: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Run ids under ``root`` (oldest first) of the config that made ``manifest``: the same
    config path, or the same run name when the path is not known."""
    from harness.store.files import read_manifest
    from harness.store.parts import list_runs

    key = manifest.get("config_path") or manifest.get("name")
    out = []
    for run_id in list_runs(root):
        other = read_manifest(root / run_id)
        if (other.get("config_path") or other.get("name")) == key:
            out.append(run_id)
    return out


def trend_charts(
    root: Path, run_id: str, manifest: Mapping[str, Any]
) -> tuple[list[tuple[str, str]], list[str]]:
    """Trend charts of :data:`TREND_METRICS` per provider over the runs of this config up to
    ``run_id``, each with the change points that :func:`harness.report.diff.diff_runs`
    finds between consecutive runs (ringed, labelled ``▲``/``▼`` and ``regression``); and
    notes. No chart for a single run. Each metric follows its first suite that has it (the
    note names it), at the first load level."""
    from harness.report.charts import lines_svg
    from harness.report.diff import diff_runs
    from harness.store.parts import read_runs

    runs = same_config_runs(Path(root), manifest)
    if run_id in runs:
        runs = runs[: runs.index(run_id) + 1]
    runs = runs[-MAX_TREND_RUNS:]
    if len(runs) < 2:
        return [], []
    rows = read_runs(Path(root), runs).to_pandas()
    per_run = {str(r): g for r, g in rows.groupby("run_id", sort=False)}
    changes = []
    for a, b in itertools.pairwise(runs):
        if a in per_run and b in per_run:
            table = diff_runs(per_run[a], per_run[b], n_resamples=400)
            if len(table):
                changes.append(table.assign(run_b=b))
    found = pd.concat(changes, ignore_index=True) if changes else pd.DataFrame()
    short = {r: _short(r) for r in runs}
    index = {r: i for i, r in enumerate(runs)}

    def x_label(value: float) -> str:
        i = round(value)
        return short[runs[i]] if abs(value - i) < 1e-9 and 0 <= i < len(runs) else ""

    out: list[tuple[str, str]] = []
    notes: list[str] = []
    for metric, label in TREND_METRICS:
        try:
            series = history(rows, metric)
        except ValueError:
            continue
        series = series.dropna(subset=["value"])
        if series.empty:
            continue
        suite = sorted(series["suite"].unique())[0]
        part = series[series["suite"] == suite]
        level = sorted(part["load_level"].unique())[0]
        part = part[part["load_level"] == level]
        lines = []
        for provider, group in part.groupby("provider", sort=True):
            points = [
                (float(index[str(r)]), float(v), "")
                for r, v in zip(group["run_id"], group["value"], strict=True)
            ]
            lines.append((str(provider), points))
        marks = []
        if len(found):
            hit = found[
                (found["metric"] == metric)
                & (found["suite"] == suite)
                & found["significant"].astype(bool)
            ]
            values = {
                (str(p), str(r)): float(v)
                for p, r, v in zip(part["provider"], part["run_id"], part["value"], strict=True)
            }
            for _, change in hit.iterrows():
                provider = str(change["provider"])
                key = next(
                    (
                        k
                        for k in values
                        if base_name(k[0]) == base_name(provider) and k[1] == change["run_b"]
                    ),
                    None,
                )
                if key is None:
                    continue
                arrow = "▲" if float(change["change"]) > 0 else "▼"
                text = f"{arrow} regression" if bool(change["regression"]) else arrow
                marks.append((key[0], float(index[key[1]]), values[key], text))
        where = f"suite {suite}" + (f", load {level}" if level != "-" else "")
        out.append(
            (
                f"trend-{metric}",
                lines_svg(
                    lines,
                    chart_id=f"trend-{metric}",
                    title=f"{label} over {len(runs)} runs ({where})",
                    x_label="run",
                    y_label=label,
                    x_format=x_label,
                    marks=marks,
                    footnote="Rings: significant changes found by harness diff between"
                    " consecutive runs.",
                ),
            )
        )
        notes.append(
            f"history: {label} over runs {runs[0]} … {runs[-1]} ({where});"
            f" {len(marks)} change points"
        )
    return out, notes


def _short(run_id: str) -> str:
    """``20261201T114705Z-quickstart`` → ``12-01 11:47``; other ids as they are (cut)."""
    import re

    match = re.match(r"^\d{4}(\d{2})(\d{2})T(\d{2})(\d{2})", run_id)
    if match:
        month, day, hour, minute = match.groups()
        return f"{month}-{day} {hour}:{minute}"
    return run_id[:12]
