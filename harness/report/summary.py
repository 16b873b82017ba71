"""The comparison table of a run, computed from the Parquet rows alone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.errors import StoreError
from harness.store import list_runs, read_runs

# Column name → (source column, aggregation). Latency in milliseconds, as
# people quote it; percentiles over successful requests only.
_PERCENTILES = {
    "ttft_p50_ms": ("ttft_s", 0.50),
    "ttft_p95_ms": ("ttft_s", 0.95),
    "itl_p50_ms": ("itl_s", 0.50),
    "e2e_p50_ms": ("e2e_s", 0.50),
    "e2e_p95_ms": ("e2e_s", 0.95),
}


def load_run(root: Path, run_id: str | None = None) -> tuple[str, pd.DataFrame]:
    """Rows of one run (default: the latest) as a DataFrame."""
    runs = list_runs(root)
    if not runs:
        raise StoreError(f"{root}: no runs found")
    chosen = run_id or runs[-1]
    if chosen not in runs:
        raise StoreError(f"{root}: no run {chosen!r}; known runs: {', '.join(runs)}")
    return chosen, read_runs(root, [chosen]).to_pandas()


def provider_label(provider: str, simulated: object) -> str:
    """Simulated providers are labelled as such wherever they appear."""
    return f"{provider} (simulated)" if simulated is not None and bool(simulated) else provider


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per (suite, provider): volume, errors, latency percentiles, speed, cost."""
    out = []
    for (suite, provider), group in rows.groupby(["suite", "provider"], sort=False):
        ok = group[group["status"] == "ok"]
        line: dict[str, object] = {
            "suite": suite,
            "provider": provider_label(str(provider), group["simulated"].iloc[0]),
            "model": group["model"].dropna().iloc[0] if group["model"].notna().any() else None,
            "requests": len(group),
            "errors": int((group["status"] != "ok").sum()),
        }
        line["error_rate"] = line["errors"] / len(group)  # type: ignore[operator]
        for name, (column, q) in _PERCENTILES.items():
            values = ok[column].dropna()
            line[name] = float(values.quantile(q)) * 1000 if len(values) else None
        tps = ok["output_tps"].dropna()
        line["output_tps_p50"] = float(tps.median()) if len(tps) else None
        tokens = ok["output_tokens"].dropna()
        line["output_tokens_mean"] = float(tokens.mean()) if len(tokens) else None
        # A request without a price makes the total unknown, not smaller.
        costs = ok["cost_usd"]
        priced = len(ok) > 0 and bool(costs.notna().all())
        line["cost_usd"] = float(costs.sum()) if priced else None
        line["usd_per_1k_requests"] = float(costs.mean()) * 1000 if priced else None
        out.append(line)
    return pd.DataFrame(out)


def render(table: pd.DataFrame, fmt: str, *, title: str | None = None) -> str:
    """Render the summary as ``table``, ``csv``, ``markdown`` or ``json``."""
    if fmt == "csv":
        return str(table.to_csv(index=False))
    if fmt == "json":
        return str(table.to_json(orient="records", indent=2))
    shown = table.copy()
    for column in ("cost_usd", "usd_per_1k_requests"):
        if column in shown:
            shown[column] = shown[column].map(lambda v: "no price" if pd.isna(v) else f"{v:.4g}")
    if "error_rate" in shown:
        shown["error_rate"] = shown["error_rate"].map(lambda v: f"{v:.1%}")
    from tabulate import tabulate

    style = "github" if fmt == "markdown" else "simple"
    text = tabulate(
        shown.to_dict("list"),
        headers="keys",
        tablefmt=style,
        showindex=False,
        floatfmt=".1f",
        missingval="-",
    )
    if title:
        text = (f"### {title}\n\n" if fmt == "markdown" else f"{title}\n\n") + text
    return str(text)
