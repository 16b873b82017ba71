"""The report's trend charts, at the cost of the runs they follow and no more.

:func:`trend_charts` draws what :func:`harness.report.history.trend_charts` draws (the
same values, change points and notes: the :data:`~harness.report.history.TREND_METRICS`
of each provider over the runs of this config, with the significant changes that
:func:`harness.report.diff.diff_runs` finds between consecutive runs), from what the
report already holds for its own run (its rows and its summary) plus, for every earlier
run, one read of the summary's columns (as Arrow), each provider's rows of which become
a DataFrame in turn, summarised once for all four metrics, then cut to the columns a
diff reads. So a million-row run beside another one costs one more read, one more
summary and one diff, never both runs' every column at once (which is what reading the
runs whole and summarising them once per metric did).

Every summary line and every diff comparison is computed from its own (suite, load
level, provider) group alone, with its own seed, so splitting an earlier run by
provider changes no number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.compute as pc

from harness.report import summary_cache
from harness.report.compare import base_name
from harness.report.diff import DIFF_METRICS, DIFF_ROW_COLUMNS, diff_runs
from harness.report.history import MAX_TREND_RUNS, TREND_METRICS, _short, same_config_runs
from harness.report.summary import SUMMARIZE_COLUMNS, run_slos, summarize
from harness.store.dataset import read_rows, redact_text
from harness.store.schema import SCHEMA

_TREND_N_RESAMPLES = 400  # as harness.report.history.trend_charts: change points only
_KEYS = ["provider", "suite", "load_level"]
_TREND_DIFFS = tuple(m for m, _ in TREND_METRICS if m in DIFF_METRICS)
"""What a trend rings: the changes of the metrics it draws (the others are not shown)."""


def trend_charts(
    root: Path,
    run_id: str,
    manifest: Mapping[str, Any],
    rows: pd.DataFrame,
    summary: pd.DataFrame,
) -> tuple[list[tuple[str, str]], list[str]]:
    """Trend charts and notes for the report of ``run_id``, whose ``rows`` (at least
    :data:`~harness.report.diff.DIFF_ROW_COLUMNS` and ``started_at``) and
    ``summary`` (:func:`~harness.report.summary.summarize` of them) the caller has.
    No chart for a single run."""
    runs = _trend_runs(Path(root), run_id, manifest)
    if len(runs) < 2:
        return [], []
    decided = [c for c in DIFF_ROW_COLUMNS if c in rows.columns]
    pieces: list[pd.DataFrame] = []  # per run: provider, suite, load level, the metrics
    started: dict[str, Any] = {}
    changes: list[pd.DataFrame] = []
    keys = {run: summary_cache.run_fingerprint(Path(root) / run) for run in runs}
    diff_rows: dict[str, dict[str, pd.DataFrame]] = {}  # per run, read once when needed

    def rows_of(run: str) -> dict[str, pd.DataFrame]:
        if run not in diff_rows:
            if run == run_id:
                diff_rows[run] = _by_provider(rows[decided])
            else:
                diff_rows[run] = _earlier_run(Path(root), run, decided, summarise=False)[1]
        return diff_rows[run]

    before: str | None = None  # the previous run with rows
    for run in runs:
        if run == run_id:
            lines = summary
            started[run] = rows["started_at"].min() if len(rows) else pd.NaT
        else:
            found = summary_cache.cached_summary(Path(root) / run, keys[run], points=True)
            if found is not None:
                lines, started[run] = found.table, found.started
            else:
                lines, diff_rows[run], started[run], starts = _earlier_run(Path(root), run, decided)
                key = keys[run]
                if key is not None:
                    summary_cache.store_summary(
                        Path(root) / run, key, lines, started[run], starts, points=True
                    )
        if len(lines):
            pieces.append(_metric_values(lines, run))
        has_rows = bool(len(lines)) if run != run_id else bool(len(rows))
        if before is not None and has_rows:
            changes.append(_pair_changes(Path(root), before, run, keys, rows_of))
        # A run without rows is in no pair: its neighbours are not diffed (as history).
        before = run if has_rows else None
        for old in [r for r in diff_rows if r not in (run, run_id)]:
            del diff_rows[old]  # no later pair needs it: one earlier run in memory at most
    return _draw(runs, pieces, started, changes)


def _trend_runs(root: Path, run_id: str, manifest: Mapping[str, Any]) -> list[str]:
    """The runs a trend of ``run_id`` follows: those of its config up to it, the last 30."""
    runs = same_config_runs(root, manifest)
    if run_id in runs:
        runs = runs[: runs.index(run_id) + 1]
    return runs[-MAX_TREND_RUNS:]


def keep_latest_changes(
    root: Path, run_id: str, manifest: Mapping[str, Any], rows: pd.DataFrame
) -> bool:
    """At the end of ``harness run``: the trend's diff of ``run_id`` (whose ``rows`` the
    caller holds) against the run before it, computed as :func:`trend_charts` computes
    it and kept, so that the run's first report finds it. Only when both runs are
    finished and the earlier one's summary is kept (then it has rows and the pair is
    the one the trend draws); True when the diff is kept."""
    root = Path(root)
    runs = _trend_runs(root, run_id, manifest)
    if len(runs) < 2 or runs[-1] != run_id or not len(rows):
        return False
    before = runs[-2]
    keys = {run: summary_cache.run_fingerprint(root / run) for run in (before, run_id)}
    found = summary_cache.cached_summary(root / before, keys[before], points=True)
    if keys[run_id] is None or found is None or not len(found.table):
        return False
    decided = [c for c in DIFF_ROW_COLUMNS if c in rows.columns]

    def rows_of(run: str) -> dict[str, pd.DataFrame]:
        if run == run_id:
            return _by_provider(rows[decided])
        return _earlier_run(root, run, decided, summarise=False)[1]

    _pair_changes(root, before, run_id, keys, rows_of)
    return True


def _pair_changes(
    root: Path,
    run_a: str,
    run_b: str,
    keys: Mapping[str, str | None],
    rows_of: Callable[[str], dict[str, pd.DataFrame]],
) -> pd.DataFrame:
    """The changes from ``run_a`` to ``run_b``: kept in ``run_b``'s directory (under both
    runs' fingerprints), so the next report reads them instead of both runs' rows."""
    key = None
    if keys[run_a] is not None and keys[run_b] is not None:
        key = {
            "a": run_a,
            "a_run": keys[run_a],
            "b_run": keys[run_b],
            "n_resamples": _TREND_N_RESAMPLES,
            "metrics": list(_TREND_DIFFS),
        }
        found = summary_cache.read_cached(root / run_b / summary_cache.TREND_DIFF_FILE, key)
        if found is not None:
            return found[0]
    table = _changes(rows_of(run_a), rows_of(run_b), run_b)
    table.attrs = {}  # diff_runs' notes: the trend shows none of them
    if key is not None:
        summary_cache.write_cached(root / run_b / summary_cache.TREND_DIFF_FILE, key, table)
    return table


def _earlier_run(
    root: Path, run: str, decided: list[str], *, summarise: bool = True
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], Any, dict[str, Any]]:
    """An earlier run's summary (no intervals: the trend is of point values), its rows
    per provider (the diff's columns only), its start and each provider's: the run is read once, as
    Arrow, and one provider at a time becomes a DataFrame. Without ``summarise``, only
    the diff's columns are read and no summary is made (an empty one is returned)."""
    # What the summary reads (not every column: a million rows of the rest are ~0.9 GB).
    wanted = {*SUMMARIZE_COLUMNS, *decided} if summarise else {*decided, "started_at"}
    columns = [c for c in SCHEMA.names if c in wanted]
    slos = run_slos(root, run)
    table = redact_text(read_rows(root, [run], columns=columns))
    provider = table.column("provider")
    lines: list[pd.DataFrame] = []
    by_provider: dict[str, pd.DataFrame] = {}
    first = None
    starts: dict[str, Any] = {}
    for name in sorted(p for p in pc.unique(provider).to_pylist() if p is not None):
        part = table.filter(pc.equal(provider, name)).to_pandas(split_blocks=True)
        if summarise:
            # With its SLOs, so that the point values kept for it are every metric's.
            lines.append(summarize(part, slos, intervals=False))
        start = starts[name] = part["started_at"].min()
        first = start if first is None or start < first else first
        by_provider[name] = part[decided]
        del part
    summary = pd.concat(lines, ignore_index=True) if lines else pd.DataFrame()
    return summary, by_provider, first if first is not None else pd.NaT, starts


def _by_provider(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {str(p): g for p, g in rows.groupby("provider", sort=True)} if len(rows) else {}


def _metric_values(lines: pd.DataFrame, run: str) -> pd.DataFrame:
    values = {
        metric: pd.to_numeric(lines[metric], errors="coerce").to_numpy(float)
        for metric, _ in TREND_METRICS
        if metric in lines.columns
    }
    return pd.DataFrame(
        {
            "run_id": run,
            "provider": lines["provider"].astype(str).to_numpy(),
            "suite": lines["suite"].astype(str).to_numpy(),
            "load_level": lines["load_level"].astype(str).to_numpy(),
            **values,
        }
    )


def _changes(
    a: Mapping[str, pd.DataFrame], b: Mapping[str, pd.DataFrame], run_b: str
) -> pd.DataFrame:
    """diff_runs of two runs, a provider at a time (each comparison is its own group)."""
    tables = []
    for provider in sorted(set(a) & set(b)):
        table = diff_runs(
            a[provider], b[provider], n_resamples=_TREND_N_RESAMPLES, metrics=_TREND_DIFFS
        )
        if len(table):
            tables.append(table.assign(run_b=run_b))
    if not tables:
        return pd.DataFrame()
    # diff_runs' own order (suite, load level, provider), as if the runs were diffed whole.
    both = pd.concat(tables, ignore_index=True)
    return both.sort_values(["suite", "load_level", "provider"], kind="stable")


def _draw(
    runs: list[str],
    pieces: list[pd.DataFrame],
    started: Mapping[str, Any],
    changes: list[pd.DataFrame],
) -> tuple[list[tuple[str, str]], list[str]]:
    from harness.report.charts import lines_svg

    found = [c for c in changes if len(c)]
    diffs = pd.concat(found, ignore_index=True) if found else pd.DataFrame()
    table = pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame()
    short = {r: _short(r) for r in runs}
    index = {r: i for i, r in enumerate(runs)}

    def x_label(value: float) -> str:
        i = round(value)
        return short[runs[i]] if abs(value - i) < 1e-9 and 0 <= i < len(runs) else ""

    out: list[tuple[str, str]] = []
    notes: list[str] = []
    for metric, label in TREND_METRICS:
        if metric not in table.columns:
            continue
        series = table[["run_id", *_KEYS, metric]].rename(columns={metric: "value"})
        series = series.dropna(subset=["value"])
        if series.empty:
            continue
        # history's order: by each run's start, then run id, suite, level, provider.
        series = series.assign(started_at=series["run_id"].map(started)).sort_values(
            ["started_at", "run_id", "suite", "load_level", "provider"], kind="stable"
        )
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
        marks = _marks(diffs, part, metric, suite, index)
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


def _marks(
    diffs: pd.DataFrame, part: pd.DataFrame, metric: str, suite: str, index: Mapping[str, int]
) -> list[tuple[str, float, float, str]]:
    if not len(diffs):
        return []
    hit = diffs[
        (diffs["metric"] == metric) & (diffs["suite"] == suite) & diffs["significant"].astype(bool)
    ]
    values = {
        (str(p), str(r)): float(v)
        for p, r, v in zip(part["provider"], part["run_id"], part["value"], strict=True)
    }
    marks = []
    for provider, run_b, change, regression in zip(
        hit["provider"], hit["run_b"], hit["change"], hit["regression"], strict=True
    ):
        key = next(
            (k for k in values if base_name(k[0]) == base_name(str(provider)) and k[1] == run_b),
            None,
        )
        if key is None:
            continue
        arrow = "▲" if float(change) > 0 else "▼"
        text = f"{arrow} regression" if bool(regression) else arrow
        marks.append((key[0], float(index[key[1]]), values[key], text))
    return marks
