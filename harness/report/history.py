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
        pieces.append(_piece(run_id, run_rows["started_at"].min(), table, metric))
    if name is not None and name not in known and not isinstance(rows, pd.DataFrame):
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(sorted(known))}")
    return _series(pieces, seen, available, metric)


def run_history(
    root: Path, runs: Iterable[str], metric: str, provider: str | None = None
) -> pd.DataFrame:
    """:func:`history` of the ``runs`` under ``root``, from each run's own summary: the
    one :func:`~harness.report.summary.load_summary` gives (with the run's SLOs, so
    ``goodput`` is there as ``harness summarize`` shows it), read from the run's
    directory while it is current (:mod:`harness.report.summary_cache`), else computed
    from the run's rows and kept. One run in memory at a time."""
    from harness.report import summary_cache
    from harness.report.summary import SUMMARIZE_COLUMNS, load_summary, read_frame, run_slos

    name = None if provider is None else base_name(provider)
    known: set[str] = set()
    available: set[str] = set()
    pieces = []
    seen = False
    # Intervals cost most of a summary; a series of point values needs none.
    bounds = metric.endswith(("_ci_low", "_ci_high"))
    for run_id in runs:
        run_dir = Path(root) / run_id
        found = summary_cache.cached_summary(run_dir, points=not bounds)
        if found is not None:
            table, started, by_provider = found
        elif bounds:  # the whole summary, computed (and kept when the run is finished)
            _, rows, table = load_summary(root, run_id)
            started, by_provider = summary_cache.provider_starts(rows)
            del rows
        else:
            key = summary_cache.run_fingerprint(run_dir)  # before the rows are read
            rows = read_frame(root, [run_id], SUMMARIZE_COLUMNS)  # what summarize reads
            table = summarize(rows, run_slos(root, run_id), intervals=False)
            started, by_provider = summary_cache.provider_starts(rows)
            del rows
            if key is not None:
                summary_cache.store_summary(run_dir, key, table, started, by_provider, points=True)
        lines = table
        if name is not None:
            labels = table["provider"].astype(str)
            known.update(base_name(p) for p in labels)
            lines = table[labels.map(base_name) == name]
            if lines.empty:
                continue
        seen = True
        available.update(str(c) for c in table.columns)
        if metric not in lines.columns:
            continue
        if name is not None:
            started = by_provider.get(name, pd.NaT)
        pieces.append(_piece(run_id, started, lines, metric))
    if name is not None and name not in known:
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(sorted(known))}")
    return _series(pieces, seen, available, metric)


def _piece(run_id: Any, started: Any, lines: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One run's values of ``metric``, a line of its summary (``lines``) each."""
    return pd.DataFrame(
        {
            "run_id": str(run_id),
            "started_at": started,
            "provider": lines["provider"].astype(str).to_numpy(),
            "suite": lines["suite"].astype(str).to_numpy(),
            "load_level": lines["load_level"].astype(str).to_numpy(),
            "value": pd.to_numeric(lines[metric], errors="coerce").to_numpy(float),
        }
    )


def _series(
    pieces: list[pd.DataFrame], seen: bool, available: set[str], metric: str
) -> pd.DataFrame:
    """The runs' pieces as one series: each (provider, suite, load level) that has a value
    in some run, in start-time order."""
    columns = ["run_id", "started_at", "provider", "suite", "load_level", "value"]
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
    # The same drawing as the report's (harness.report.trends), from whole-run series.
    from harness.report.trends import _draw

    keys = ["run_id", "suite", "load_level", "provider"]
    columns = []
    for metric, _ in TREND_METRICS:
        try:
            series = history(rows, metric)
        except ValueError:
            continue
        columns.append(series.set_index(keys)["value"].rename(metric))
    table = pd.concat(columns, axis=1).reset_index() if columns else pd.DataFrame()
    started = rows.groupby("run_id")["started_at"].min().to_dict()
    return _draw(runs, [table], started, changes)


def _short(run_id: str) -> str:
    """``20261201T114705Z-quickstart`` → ``12-01 11:47``; other ids as they are (cut)."""
    import re

    match = re.match(r"^\d{4}(\d{2})(\d{2})T(\d{2})(\d{2})", run_id)
    if match:
        month, day, hour, minute = match.groups()
        return f"{month}-{day} {hour}:{minute}"
    return run_id[:12]
