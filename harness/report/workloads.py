"""Per-kind figures of the ``chat`` and ``prompt_cache`` suites, from the stored rows.

:func:`workload_figures` adds a few columns to a summary line (one suite × load level ×
provider); :func:`chat_turns` and :func:`prompt_cache_table` are tables of their own.
Every figure uses measured rows only (no warm-ups; latency never from a cached row).

chat
    ``turn_score`` (mean over turns, each turn a case; bootstrap 95 % CI over cases),
    ``conversations``, ``usd_per_conversation`` (a conversation's turns summed: what one
    conversation costs; None when a turn has no price), ``input_tokens_last_turn_mean``
    (the context a conversation grows to). Per turn (:func:`chat_turns`): requests,
    errors, TTFT/E2E p50, input/output tokens, turn score, cost.
prompt_cache
    ``ttft_cold_p50_ms``/``ttft_warm_p50_ms`` and their ratio (``warm_ttft_ratio``),
    ``cache_hit_rate`` (warm requests that reported cached tokens > 0, of those that
    reported a count), ``cached_token_rate`` (reported cached tokens / expected, warm
    requests), ``cache_mismatches``, ``usd_per_request`` (mean cost as billed, cold and
    warm together: the effective price at the measured hit rate), ``list_usd_per_request``
    (the same requests with every input token at the uncached input price) and
    ``cache_saving`` (1 - effective / list).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

GROUP = ["suite", "load_level", "provider"]


def _measured(rows: pd.DataFrame) -> pd.DataFrame:
    if "warmup" in rows:
        rows = rows[rows["warmup"].fillna(False).astype(bool) == False]  # noqa: E712
    return rows


def _timed(ok: pd.DataFrame) -> pd.DataFrame:
    if "from_cache" in ok:
        return ok[~ok["from_cache"].fillna(False).astype(bool)]
    return ok


def _p50_ms(values: pd.Series) -> float | None:
    clean = values.dropna().to_numpy(dtype=float)
    clean = clean[np.isfinite(clean)]
    return float(np.percentile(clean, 50)) * 1000 if len(clean) else None


def _kind(group: pd.DataFrame) -> str | None:
    kinds: Any = group["suite_kind"].dropna().unique() if "suite_kind" in group else []
    return str(kinds[0]) if len(kinds) == 1 else None


def workload_figures(group: pd.DataFrame) -> dict[str, Any]:
    """Columns for one summary line (rows of one suite, load level and provider)."""
    group = _measured(group)
    kind = _kind(group)
    if kind == "chat":
        return _chat_figures(group)
    if kind == "prompt_cache":
        return _cache_figures(group)
    return {}


def _chat_figures(group: pd.DataFrame) -> dict[str, Any]:
    from harness.scoring import bootstrap_ci, per_case

    out: dict[str, Any] = {}
    if group["turn_score"].notna().any():
        values = per_case(group, "turn_score", "provider").iloc[:, 0].to_numpy(dtype=np.float64)
        mean, low, high = bootstrap_ci(values, n_resamples=1000, seed=0)
        out["turn_score"], out["turn_score_ci_low"], out["turn_score_ci_high"] = mean, low, high
    conversations = group.groupby(["conversation", "repeat"], sort=False)
    out["conversations"] = conversations.ngroups
    # A turn without a price (or a failed one: it bought nothing) makes its
    # conversation's cost unknown only when it was sent and not priced.
    sent = group[group["status"] == "ok"]
    costs = sent.groupby(["conversation", "repeat"], sort=False)["cost_usd"]
    totals = costs.sum(min_count=1)
    priced = bool(len(sent)) and bool(sent["cost_usd"].notna().all())
    out["usd_per_conversation"] = float(totals.mean()) if priced and len(totals) else None
    last = sent.sort_values("turn").groupby(["conversation", "repeat"], sort=False).tail(1)
    tokens = last["input_tokens"].dropna()
    out["input_tokens_last_turn_mean"] = float(tokens.mean()) if len(tokens) else None
    return out


def _list_cost(ok: pd.DataFrame) -> pd.Series:
    """Each row's cost with every input token at the uncached input price."""
    return (
        ok["input_tokens"] * ok["price_input_per_mtok"]
        + ok["output_tokens"] * ok["price_output_per_mtok"]
    ) / 1e6


def _cache_figures(group: pd.DataFrame) -> dict[str, Any]:
    ok = group[group["status"] == "ok"]
    timed = _timed(ok)
    cold, warm = timed[timed["cache_role"] == "cold"], timed[timed["cache_role"] == "warm"]
    out: dict[str, Any] = {
        "ttft_cold_p50_ms": _p50_ms(cold["ttft_s"]),
        "ttft_warm_p50_ms": _p50_ms(warm["ttft_s"]),
    }
    if out["ttft_cold_p50_ms"] and out["ttft_warm_p50_ms"] is not None:
        out["warm_ttft_ratio"] = out["ttft_warm_p50_ms"] / out["ttft_cold_p50_ms"]
    warm_ok = ok[ok["cache_role"] == "warm"]
    hits = warm_ok["cache_hit"].dropna()
    out["cache_hit_rate"] = float(hits.astype(bool).mean()) if len(hits) else None
    reported = warm_ok[warm_ok["cached_input_tokens"].notna()]
    expected = float(reported["cache_expected_tokens"].sum())
    out["cached_token_rate"] = (
        float(reported["cached_input_tokens"].sum()) / expected if expected else None
    )
    out["cache_mismatches"] = int(ok["cache_mismatch"].fillna(False).astype(bool).sum())
    if len(ok) and ok["cost_usd"].notna().all():
        out["usd_per_request"] = float(ok["cost_usd"].mean())
        listed = _list_cost(ok)
        if listed.notna().all():
            out["list_usd_per_request"] = float(listed.mean())
            if out["list_usd_per_request"]:
                out["cache_saving"] = 1 - out["usd_per_request"] / out["list_usd_per_request"]
    return out


def chat_turns(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per chat suite, load level, provider and turn (empty without chat rows)."""
    rows = _measured(rows)
    rows = rows[rows["suite_kind"] == "chat"] if "suite_kind" in rows else rows.iloc[:0]
    if not len(rows):
        return pd.DataFrame()
    rows = rows.assign(load_level=rows["load_level"].fillna("-"))
    out = []
    for (suite, level, provider, _), group in rows.groupby([*GROUP, "turn"], sort=True):
        ok = group[group["status"] == "ok"]
        timed = _timed(ok)
        costs = ok["cost_usd"]
        out.append(
            {
                "suite": suite,
                "load_level": level,
                "provider": provider,
                "turn": int(group["turn"].iloc[0]),
                "requests": len(group),
                "errors": int((group["status"] != "ok").sum()),
                "ttft_p50_ms": _p50_ms(timed["ttft_s"]),
                "e2e_p50_ms": _p50_ms(timed["e2e_s"]),
                "input_tokens_mean": float(ok["input_tokens"].mean()) if len(ok) else None,
                "output_tokens_mean": float(ok["output_tokens"].mean()) if len(ok) else None,
                "turn_score": float(group["turn_score"].mean())
                if group["turn_score"].notna().any()
                else None,
                "cost_usd": float(costs.sum()) if len(ok) and costs.notna().all() else None,
            }
        )
    return pd.DataFrame(out)


def prompt_cache_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per prompt_cache suite, load level and provider (empty without any)."""
    rows = _measured(rows)
    rows = rows[rows["suite_kind"] == "prompt_cache"] if "suite_kind" in rows else rows.iloc[:0]
    if not len(rows):
        return pd.DataFrame()
    rows = rows.assign(load_level=rows["load_level"].fillna("-"))
    out = []
    for (suite, level, provider), group in rows.groupby(GROUP, sort=True):
        line: dict[str, Any] = {
            "suite": suite,
            "load_level": level,
            "provider": provider,
            "requests": len(group),
            "errors": int((group["status"] != "ok").sum()),
        }
        out.append(line | _cache_figures(group))
    return pd.DataFrame(out)
