"""One summary metric over many runs, in start-time order (:func:`history`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from harness.report.compare import (
    base_name,
)
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
    for run_id, all_rows in runs:
        run_rows = all_rows
        if name is not None and not isinstance(rows, pd.DataFrame):
            known.update(str(p) for p in all_rows["provider"].dropna().unique())
            run_rows = all_rows[all_rows["provider"] == name]
            if run_rows.empty:
                continue
        seen = True
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
