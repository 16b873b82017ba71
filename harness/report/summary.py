"""The comparison table of a run, computed from the Parquet rows (and the manifest's SLOs).

Statistics use successful, non-warm-up requests. Percentiles come with a
bootstrap 95 % confidence interval (percentile method, 1,000 resamples,
seeded), so two providers whose intervals overlap are not told apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import StoreError
from harness.store import list_runs, read_manifest, read_runs

PERCENTILES = (50, 90, 95, 99)
# Source column → label and scale; latency in milliseconds, as people quote it.
METRICS = {
    "ttft": ("ttft_s", 1000.0, "_ms"),
    "itl": ("itl_s", 1000.0, "_ms"),
    "e2e": ("e2e_s", 1000.0, "_ms"),
    "output_tps": ("output_tps", 1.0, ""),
}
GROUP = ["suite", "load_level", "provider"]


def load_run(root: Path, run_id: str | None = None) -> tuple[str, pd.DataFrame]:
    """Rows of one run (default: the latest) as a DataFrame."""
    runs = list_runs(root)
    if not runs:
        raise StoreError(f"{root}: no runs found")
    chosen = run_id or runs[-1]
    if chosen not in runs:
        raise StoreError(f"{root}: no run {chosen!r}; known runs: {', '.join(runs)}")
    return chosen, read_runs(root, [chosen]).to_pandas()


def run_slos(root: Path, run_id: str) -> dict[str, dict[str, float]]:
    """SLOs per suite from the run's manifest (empty when none were set)."""
    config = read_manifest(Path(root) / run_id).get("config", {})
    return {
        s["name"]: {k: v for k, v in (s.get("slo") or {}).items() if v is not None}
        for s in config.get("suites", [])
        if s.get("slo")
    }


def provider_label(provider: str, simulated: object) -> str:
    """Simulated providers are labelled as such wherever they appear."""
    return f"{provider} (simulated)" if simulated is not None and bool(simulated) else provider


def percentile_ci(
    values: np.ndarray[Any, Any], q: float, *, n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap 95 % interval of the ``q``-th percentile (percentile method)."""
    n = len(values)
    if n < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    # Chunked so that large groups do not allocate n_resamples × n at once.
    chunk = max(1, 4_000_000 // n)
    stats = []
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        sample = values[rng.integers(0, n, size=(size, n))]
        stats.append(np.percentile(sample, q, axis=1))
    boot = np.concatenate(stats)
    low, high = np.percentile(boot, [2.5, 97.5])
    return float(low), float(high)


def _meets(ok: pd.DataFrame, slo: Mapping[str, float]) -> pd.Series:
    met = pd.Series(True, index=ok.index)
    for key, column in (("ttft_ms", "ttft_s"), ("itl_ms", "itl_s"), ("e2e_ms", "e2e_s")):
        if key in slo:
            met &= ok[column].fillna(np.inf) * 1000 <= slo[key]
    return met


def summarize(
    rows: pd.DataFrame, slos: Mapping[str, Mapping[str, float]] | None = None
) -> pd.DataFrame:
    """One line per (suite, load level, provider): volume, errors, percentiles with CIs,
    throughput, goodput against the suite's SLOs, speed and cost."""
    slos = slos or {}
    rows = rows.copy()
    if "warmup" in rows:
        rows = rows[rows["warmup"].fillna(False).astype(bool) == False]  # noqa: E712
    rows["load_level"] = rows["load_level"].fillna("-") if "load_level" in rows else "-"
    out = []
    for (suite, level, provider), group in rows.groupby(GROUP, sort=False):
        ok = group[group["status"] == "ok"]
        line: dict[str, Any] = {
            "suite": suite,
            "load_level": level,
            "provider": provider_label(str(provider), group["simulated"].iloc[0]),
            "model": group["model"].dropna().iloc[0] if group["model"].notna().any() else None,
            "requests": len(group),
            "errors": int((group["status"] != "ok").sum()),
            "rate_limited": int((group["error_type"] == "rate_limited").sum()),
        }
        line["error_rate"] = line["errors"] / len(group)
        for name, (column, scale, unit) in METRICS.items():
            values = ok[column].dropna().to_numpy(dtype=float) * scale
            for p in PERCENTILES:
                value = float(np.percentile(values, p)) if len(values) else None
                line[f"{name}_p{p}{unit}"] = value
            low, high = percentile_ci(values, 50) if len(values) else (None, None)
            line[f"{name}_p50{unit}_ci_low"], line[f"{name}_p50{unit}_ci_high"] = low, high
        # Throughput over the wall-clock span of the measured requests.
        if len(ok):
            start = ok["started_at"].min()
            end = (ok["started_at"] + pd.to_timedelta(ok["e2e_s"], unit="s")).max()
            span = (end - start).total_seconds()
        else:
            span = 0.0
        line["throughput_rps"] = len(ok) / span if span > 0 else None
        tokens = ok["output_tokens"].fillna(ok.get("output_tokens_client", np.nan))
        line["output_tokens_per_s"] = float(tokens.sum()) / span if span > 0 else None
        line["output_tokens_mean"] = float(tokens.mean()) if len(tokens.dropna()) else None
        slo = slos.get(str(suite))
        if slo:
            met = _meets(ok, slo)
            line["goodput"] = float(met.sum()) / len(group)
            line["goodput_rps"] = float(met.sum()) / span if span > 0 else None
        if "clock_ok" in group:
            line["clock_untrusted"] = int((group["clock_ok"] == False).sum())  # noqa: E712
        # A request without a price makes the total unknown, not smaller.
        costs = ok["cost_usd"]
        priced = len(ok) > 0 and bool(costs.notna().all())
        line["cost_usd"] = float(costs.sum()) if priced else None
        line["usd_per_1k_requests"] = float(costs.mean()) * 1000 if priced else None
        out.append(line)
    return pd.DataFrame(out)


COMPACT = {
    "suite": "suite",
    "load_level": "load",
    "provider": "provider",
    "requests": "n",
    "error_rate": "errors",
    "ttft_p50_ms": "TTFT p50 ms",
    "ttft_p50_ci": "TTFT p50 95% CI",
    "ttft_p95_ms": "TTFT p95",
    "itl_p50_ms": "ITL p50 ms",
    "e2e_p50_ms": "E2E p50 ms",
    "e2e_p95_ms": "E2E p95",
    "output_tps_p50": "tok/s p50",
    "throughput_rps": "req/s",
    "goodput": "goodput",
    "usd_per_1k_requests": "$/1k req",
}


def compact(table: pd.DataFrame) -> pd.DataFrame:
    """The columns a person reads first, formatted for a terminal or a pull request."""
    shown = table.copy()
    if "ttft_p50_ms_ci_low" in shown:
        shown["ttft_p50_ci"] = [
            "-" if pd.isna(lo) else f"{lo:.1f}–{hi:.1f}"
            for lo, hi in zip(
                shown["ttft_p50_ms_ci_low"], shown["ttft_p50_ms_ci_high"], strict=True
            )
        ]
    if "usd_per_1k_requests" in shown:
        shown["usd_per_1k_requests"] = shown["usd_per_1k_requests"].map(
            lambda v: "no price" if pd.isna(v) else f"{v:.4g}"
        )
    for column in ("error_rate", "goodput"):
        if column in shown:
            shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{v:.1%}")
    if "load_level" in shown and (shown["load_level"] == "-").all():
        shown = shown.drop(columns=["load_level"])
    keep = [c for c in COMPACT if c in shown]
    return shown[keep].rename(columns=COMPACT)


def render(table: pd.DataFrame, fmt: str, *, title: str | None = None) -> str:
    """Render the summary as ``table``/``markdown`` (compact) or ``csv``/``json`` (every column)."""
    if fmt == "csv":
        return str(table.to_csv(index=False))
    if fmt == "json":
        return str(table.to_json(orient="records", indent=2))
    from tabulate import tabulate

    style = "github" if fmt == "markdown" else "simple"
    text = tabulate(
        compact(table).to_dict("list"),
        headers="keys",
        tablefmt=style,
        showindex=False,
        floatfmt=".1f",
        missingval="-",
    )
    if title:
        text = (f"### {title}\n\n" if fmt == "markdown" else f"{title}\n\n") + text
    return str(text)
