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
from harness.secrets import redact_frame
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
# Per-answer quality scores averaged per provider, each with a bootstrap 95 % CI.
QUALITY = (
    "exact_match",
    "f1",
    "exact_match_abstain",
    "f1_abstain",
    "contains",
    "regex_match",
    "judge_correctness",
)
# The score that counts a correct abstention on an unanswerable case as correct:
# what "correct answer" means for $ per correct answer and for paired tests.
PRIMARY_QUALITY = "exact_match_abstain"


def load_run(root: Path, run_id: str | None = None) -> tuple[str, pd.DataFrame]:
    """Rows of one run (default: the latest) as a DataFrame."""
    runs = list_runs(root)
    if not runs:
        raise StoreError(f"{root}: no runs found")
    chosen = run_id or runs[-1]
    if chosen not in runs:
        raise StoreError(f"{root}: no run {chosen!r}; known runs: {', '.join(runs)}")
    # Whatever reads rows prints them somewhere: no key-shaped text gets through.
    return chosen, redact_frame(read_runs(root, [chosen]).to_pandas())


def run_slos(root: Path, run_id: str) -> dict[str, dict[str, float]]:
    """SLOs per suite from the run's manifest (empty when none were set)."""
    config = read_manifest(Path(root) / run_id).get("config", {})
    return {
        s["name"]: {k: v for k, v in (s.get("slo") or {}).items() if v is not None}
        for s in config.get("suites", [])
        if s.get("slo")
    }


def load_summary(root: Path, run_id: str | None = None) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """A run's id, its rows, and its comparison table (with the SLOs its manifest names)."""
    chosen, rows = load_run(root, run_id)
    return chosen, rows, summarize(rows, run_slos(root, chosen))


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
    throughput, goodput against the suite's SLOs, speed and cost.

    A NaN or infinite value in a row gives NaN/inf in its line, without a warning;
    infinite durations are left out of the percentiles (they measured nothing).
    """
    with np.errstate(all="ignore"):
        return _summarize(rows, slos)


def _summarize(
    rows: pd.DataFrame, slos: Mapping[str, Mapping[str, float]] | None = None
) -> pd.DataFrame:
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
            values = values[np.isfinite(values)]  # an infinite duration measured nothing
            for p in PERCENTILES:
                value = float(np.percentile(values, p)) if len(values) else None
                line[f"{name}_p{p}{unit}"] = value
            low, high = percentile_ci(values, 50) if len(values) else (None, None)
            line[f"{name}_p50{unit}_ci_low"], line[f"{name}_p50{unit}_ci_high"] = low, high
        # Throughput over the wall-clock span of the measured requests.
        # In float seconds from the first start: a non-finite or absurd e2e_s in a
        # row cannot overflow a timestamp (it ends nothing).
        span = 0.0
        if len(ok):
            offsets = (ok["started_at"] - ok["started_at"].min()).dt.total_seconds()
            ends = offsets.to_numpy(dtype=float, na_value=np.nan) + ok["e2e_s"].to_numpy(
                dtype=float, na_value=np.nan
            )
            ends = ends[np.isfinite(ends)]
            span = float(ends.max()) if len(ends) else 0.0
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
        line.update(_cost_detail(ok, line["cost_usd"]))
        line.update(_quality(group, line["cost_usd"]))
        out.append(line)
    table = pd.DataFrame(out)
    return table.sort_values(GROUP, kind="stable") if len(table) else table


def _cost_detail(ok: pd.DataFrame, cost: float | None) -> dict[str, Any]:
    """Cost in units that compare across tokenizers, beside $ per million tokens."""
    if cost is None or not len(ok) or "input_chars" not in ok:
        return {}
    tokens = float(ok["input_tokens"].fillna(0).sum() + ok["output_tokens"].fillna(0).sum())
    chars = float(ok["input_chars"].fillna(0).sum() + ok["output_chars"].fillna(0).sum())
    out: dict[str, Any] = {
        "usd_per_task": cost / len(ok),
        "usd_per_1k_chars": cost / chars * 1000 if chars else None,
        "effective_usd_per_mtok": cost / tokens * 1e6 if tokens else None,
    }
    input_tokens = float(ok["input_tokens"].fillna(0).sum())
    if input_tokens:
        out["chars_per_input_token"] = float(ok["input_chars"].sum()) / input_tokens
    prices = ok[["price_input_per_mtok", "price_output_per_mtok"]].dropna()
    if len(prices):
        # The 3:1 input:output blend that public leaderboards quote.
        first = prices.iloc[0]
        out["blended_usd_per_mtok"] = (
            3 * first["price_input_per_mtok"] + first["price_output_per_mtok"]
        ) / 4
    return out


def _quality(group: pd.DataFrame, cost: float | None) -> dict[str, Any]:
    """Mean scores with CIs, abstention behaviour, and $ per correct answer."""
    from harness.scoring import bootstrap_ci

    out: dict[str, Any] = {}
    for column in QUALITY:
        if column not in group or group[column].isna().all():
            continue
        values = group[column].to_numpy(dtype=np.float64)
        mean, low, high = bootstrap_ci(values, n_resamples=1000, seed=0)
        out[column], out[f"{column}_ci_low"], out[f"{column}_ci_high"] = mean, low, high
    if not out:
        return out
    answerable = group["answerable"].astype("boolean")
    abstained = group["abstained"].astype("boolean").fillna(False)
    unanswerable = group[answerable == False]  # noqa: E712
    if len(unanswerable):
        out["abstention_accuracy"] = float(abstained[unanswerable.index].mean())
    if (answerable == True).any():  # noqa: E712
        out["answer_rate"] = float((~abstained[answerable == True]).mean())  # noqa: E712
    if "judge_faithful" in group and group["judge_faithful"].notna().any():
        out["judge_faithful"] = float(group["judge_faithful"].dropna().astype(float).mean())
        out["judge_cost_usd"] = float(group["judge_cost_usd"].sum(min_count=1) or 0) or None
    correct = float(group[PRIMARY_QUALITY].sum()) if PRIMARY_QUALITY in group else 0.0
    out["usd_per_correct"] = cost / correct if cost is not None and correct > 0 else None
    return out


def paired_quality(rows: pd.DataFrame, metric: str = PRIMARY_QUALITY) -> pd.DataFrame:
    """Every pair of providers on the same cases of a suite: is A better than B?

    Paired bootstrap of the mean difference (95 % CI, two-sided p) and McNemar's
    test on correct/incorrect; only cases both providers answered are compared.
    """
    from harness.scoring import mcnemar, paired_bootstrap

    if metric not in rows or rows[metric].isna().all():
        return pd.DataFrame()
    scored = rows[rows[metric].notna()]
    if "warmup" in scored:
        scored = scored[scored["warmup"].fillna(False).astype(bool) == False]  # noqa: E712
    out = []
    for suite, group in scored.groupby("suite", sort=False):
        wide = group.pivot_table(
            index=["case_id", "repeat"], columns="provider", values=metric, aggfunc="mean"
        )
        providers = list(wide.columns)
        for i, a in enumerate(providers):
            for b in providers[i + 1 :]:
                both = wide[[a, b]].dropna()
                if len(both) < 2:
                    continue
                boot = paired_bootstrap(both[a].to_numpy(), both[b].to_numpy(), seed=0)
                test = mcnemar((both[a] >= 0.5).tolist(), (both[b] >= 0.5).tolist())
                out.append(
                    {
                        "suite": suite,
                        "metric": metric,
                        "a": a,
                        "b": b,
                        "n": len(both),
                        "mean_a": float(both[a].mean()),
                        "mean_b": float(both[b].mean()),
                        "diff": boot["mean_diff"],
                        "diff_ci_low": boot["ci_low"],
                        "diff_ci_high": boot["ci_high"],
                        "p_bootstrap": boot["p_value"],
                        "p_mcnemar": test["p_value"],
                        "verdict": _verdict(a, b, boot["ci_low"], boot["ci_high"], test["p_value"]),
                    }
                )
    return pd.DataFrame(out)


def _verdict(a: str, b: str, low: float, high: float, p_mcnemar: float) -> str:
    # Both tests must agree: the bootstrap interval is too narrow with few
    # discordant cases, where McNemar's exact test is the honest one.
    if p_mcnemar >= 0.05:
        return "no significant difference"
    if low > 0:
        return f"{a} better"
    if high < 0:
        return f"{b} better"
    return "no significant difference"


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
    "quality": "EM (abstain) [95% CI]",
    "usd_per_1k_requests": "$/1k req",
    "usd_per_correct": "$/correct",
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
    if PRIMARY_QUALITY in shown:
        shown["quality"] = [
            "-" if pd.isna(m) else f"{m:.3f} [{lo:.3f}, {hi:.3f}]"
            for m, lo, hi in zip(
                shown[PRIMARY_QUALITY],
                shown[f"{PRIMARY_QUALITY}_ci_low"],
                shown[f"{PRIMARY_QUALITY}_ci_high"],
                strict=True,
            )
        ]
    if "usd_per_correct" in shown:
        shown["usd_per_correct"] = shown["usd_per_correct"].map(
            lambda v: "-" if pd.isna(v) else f"{v:.4g}"
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


def render_pairs(pairs: pd.DataFrame, fmt: str) -> str:
    """The paired comparison as a table: who is better, by how much, how sure."""
    from tabulate import tabulate

    shown = pd.DataFrame(
        {
            "suite": pairs["suite"],
            "A vs B": pairs["a"] + " vs " + pairs["b"],
            "n": pairs["n"],
            "A - B [95% CI]": [
                f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"
                for d, lo, hi in zip(
                    pairs["diff"], pairs["diff_ci_low"], pairs["diff_ci_high"], strict=True
                )
            ],
            "p (bootstrap)": pairs["p_bootstrap"].map(lambda p: f"{p:.3g}"),
            "p (McNemar)": pairs["p_mcnemar"].map(lambda p: f"{p:.3g}"),
            "verdict": pairs["verdict"],
        }
    )
    style = "github" if fmt == "markdown" else "simple"
    title = f"Paired comparison on the same cases ({pairs['metric'].iloc[0]})"
    head = f"### {title}\n\n" if fmt == "markdown" else f"{title}\n\n"
    return head + str(
        tabulate(shown.to_dict("list"), headers="keys", tablefmt=style, showindex=False)
    )
