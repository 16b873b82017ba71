"""The comparison table of a run, computed from the Parquet rows (and the manifest's SLOs).

Statistics use successful, non-warm-up requests. Percentiles come with a
bootstrap 95 % confidence interval (percentile method, 1,000 resamples,
seeded), so two providers whose intervals overlap are not told apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from harness.errors import StoreError
from harness.report.groups import split
from harness.report.quality import tool_timing
from harness.report.workloads import workload_figures
from harness.store.dataset import Where, decode_text, read_batches, read_rows, redact_text
from harness.store.files import read_manifest
from harness.store.parts import list_runs
from harness.store.schema import SCHEMA

if TYPE_CHECKING:
    from harness.report.export import Kind

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
# what "correct answer" means for rag_qa's $ per correct answer and paired tests. Every
# kind has its own primary score (harness.report.quality); QUALITY and PRIMARY_QUALITY
# are rag_qa's, kept for the callers that name them.
PRIMARY_QUALITY = "exact_match_abstain"


# Columns that no summary, ranking or comparison reads: the answer text, free-text
# errors and judge rationales, raw chunk timings, reference answers (most of a run's
# bytes), and the diagnostics that no report code names. The reports that show rows
# (exports) read every column on their own.
UNSUMMARISED = frozenset(
    {
        "response_text",
        "error_message",
        "judge_rationale",
        "judge_error",
        "chunk_offsets_s",
        "chunk_tokens",
        "references",
        "retry_wait_s",
        "retry_after_s",
        "t0_perf_s",
        "first_chunk_s",
        "first_reasoning_s",
        "tpot_s",
        "tokens_mismatch",
        "visible_tokens",
        "tokens_per_chunk",
        "cache_write_tokens",
        "schedule_lag_s",
        "send_delay_s",
        "loop_lag_ms",
        "client_cpu",
        "worker",
        "finish_reason",
        "judge_model",
        "judge_input_tokens",
        "judge_output_tokens",
        "judge_from_cache",
    }
)
SUMMARY_COLUMNS = tuple(name for name in SCHEMA.names if name not in UNSUMMARISED)
"""What :func:`summarize`, the leaderboard, diff, history and the gate read."""
# Of those, the ones no line of the summary reads (they name the client, the node, the
# text of tool calls and errors; fairness notes and exports read them): a group's rows
# are built without them.
UNREAD_BY_SUMMARY = UNSUMMARISED | {
    "run_id",
    "request_index",
    "transport",
    "clock",
    "max_tokens",
    "http_status",
    "text_chunks",
    "price_source",
    "executor",
    "node",
    "actor",
    "node_clock_ok",
    "chat_history",
    "cache_prefix",
    "cache_salt",
    "tool_calls",
    "tool_error",
    "structured_error",
}
SUMMARIZE_COLUMNS = tuple(
    name
    for name in SUMMARY_COLUMNS
    if name not in UNREAD_BY_SUMMARY or name in ("run_id", "transport", "clock")
)
"""What ``harness summarize`` reads: the summary's columns, and those of its notes (the
fairness note names each provider's client and clock)."""
_SUMMARY_NEEDS = frozenset(SUMMARIZE_COLUMNS) - {"run_id", "transport", "clock"}
"""The columns :func:`summarize` reads: a summary cached by :func:`load_summary` is of
rows that had every one of them."""


def load_run(
    root: Path, run_id: str | None = None, columns: Sequence[str] | None = None
) -> tuple[str, pd.DataFrame]:
    """Rows of one run (default: the latest) as a DataFrame: ``columns`` of them (default
    every column; :data:`SUMMARY_COLUMNS` is what the reports need)."""
    chosen = pick_run(root, run_id)
    return chosen, read_frame(root, [chosen], columns)


def pick_run(root: Path, run_id: str | None = None) -> str:
    """``run_id`` if the root holds it, else (None) the latest run; StoreError if neither."""
    runs = list_runs(root)
    if not runs:
        raise StoreError(f"{root}: no runs found")
    chosen = run_id or runs[-1]
    if chosen not in runs:
        raise StoreError(f"{root}: no run {chosen!r}; known runs: {', '.join(runs)}")
    return chosen


def read_frame(
    root: Path,
    run_ids: Sequence[str],
    columns: Sequence[str] | None = None,
    where: Where | None = None,
) -> pd.DataFrame:
    """Rows of the runs as a DataFrame, from one dataset scan (``harness.store.dataset``).

    Whatever reads rows prints them somewhere: no key-shaped text gets through (the
    writer scrubs error messages, but an answer may echo a key, and older rows were
    written before that).
    """
    # Text columns come as the parts' dictionaries (scrubbed there: a few values, not a
    # million rows), decoded into one chunk each.
    text = [c for c in (columns or SCHEMA.names) if c in _TEXT_COLUMNS]
    rows = read_rows(root, run_ids, columns=columns, where=where, dictionary=text)
    table = _one_chunk_text(decode_text(redact_text(rows)))
    del rows
    # The Arrow buffers are released column by column as pandas takes them over, so
    # the rows are not held twice; but Arrow's allocator keeps what it freed (pandas
    # allocates through numpy), so the table is converted a few columns at a time,
    # handing that memory back in between (~100 MB less at the peak for 1M rows).
    names = table.column_names
    parts: list[pd.DataFrame] = []
    while len(names) > _CONVERTED_COLUMNS:
        some, names = names[:_CONVERTED_COLUMNS], names[_CONVERTED_COLUMNS:]
        part, table = table.select(some), table.select(names)
        parts.append(part.to_pandas(split_blocks=True, self_destruct=True))
        del part
        pa.default_memory_pool().release_unused()
    parts.append(table.to_pandas(split_blocks=True, self_destruct=True))
    del table
    pa.default_memory_pool().release_unused()
    frame: pd.DataFrame = pd.concat(parts, axis=1) if len(parts) > 1 else parts[0]
    return frame


_CONVERTED_COLUMNS = 8  # columns per conversion into pandas (see read_frame)


_TEXT_COLUMNS = frozenset(f.name for f in SCHEMA if pa.types.is_string(f.type))


def _one_chunk_text(table: pa.Table) -> pa.Table:
    """The table with each text column in one chunk (the same values): every filter,
    comparison and ``take`` on a text column of the DataFrame then runs over one Arrow
    array, not over the scan's batches one at a time (for ``take``, many times slower)."""
    for i, field in enumerate(table.schema):
        column = table.column(i)
        if column.num_chunks > 1 and (
            pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
        ):
            one = pa.chunked_array([column.combine_chunks()], type=field.type)
            table = table.set_column(i, field, one)
    return table


def frame_batches(root: Path, run_ids: Sequence[str]) -> Iterator[pd.DataFrame]:
    """Every column of the runs' rows, a redacted DataFrame at a time (for exports)."""
    for table in read_batches(root, run_ids):
        frame: pd.DataFrame = redact_text(table).to_pandas()
        yield frame


def run_slos(root: Path, run_id: str) -> dict[str, dict[str, float]]:
    """SLOs per suite from the run's manifest (empty when none were set)."""
    config = read_manifest(Path(root) / run_id).get("config", {})
    return {
        s["name"]: {k: v for k, v in (s.get("slo") or _load_slo(s)).items() if v is not None}
        for s in config.get("suites", [])
        if s.get("slo") or _load_slo(s)
    }


def _load_slo(suite: Mapping[str, Any]) -> dict[str, Any]:
    """A capacity search's SLO (``load.slo``), for suites that set none of their own."""
    return dict((suite.get("load") or {}).get("slo") or {})


def load_summary(
    root: Path,
    run_id: str | None = None,
    *,
    columns: Sequence[str] = SUMMARY_COLUMNS,
    cached_columns: Sequence[str] | None = None,
) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """A run's id, its rows (``columns`` of them: default :data:`SUMMARY_COLUMNS`;
    :data:`SUMMARIZE_COLUMNS` is what ``harness summarize`` prints from), and its
    comparison table (with the SLOs its manifest names).

    The table of a finished run is computed once and then read from the run's
    directory (:mod:`harness.report.summary_cache`), as long as its rows, its manifest
    and the code are those it was computed from. ``cached_columns``: the columns the
    caller reads besides the table, read instead of ``columns`` when the table is kept
    (a report of a million rows then reads half the columns)."""
    from harness.report import summary_cache

    chosen = pick_run(root, run_id)
    run_dir = Path(root) / chosen
    # Taken before the rows are read: a run that changes meanwhile is not cached as it was.
    fingerprint = summary_cache.run_fingerprint(run_dir)
    if not set(columns) >= _SUMMARY_NEEDS:
        fingerprint = None  # a summary of fewer columns may differ: neither read nor kept
    found = summary_cache.cached_summary(run_dir, fingerprint) if fingerprint else None
    if found is not None:
        rows = read_frame(root, [chosen], columns if cached_columns is None else cached_columns)
        return chosen, rows, found.table
    rows = read_frame(root, [chosen], columns)
    summary = summarize(rows, run_slos(root, chosen))
    if fingerprint is not None:
        summary_cache.store_summary(
            run_dir, fingerprint, summary, *summary_cache.provider_starts(rows)
        )
    return chosen, rows, summary


def provider_label(provider: str, simulated: object) -> str:
    """Simulated providers are labelled as such wherever they appear."""
    return f"{provider} (simulated)" if simulated is not None and bool(simulated) else provider


def percentile_ci(
    values: np.ndarray[Any, Any],
    q: float,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    clusters: np.ndarray[Any, Any] | None = None,
) -> tuple[float, float]:
    """Bootstrap 95 % interval of the ``q``-th percentile (percentile method); with
    ``clusters`` (each value's case id) a group with repeats resamples cases.
    See :func:`harness.stats.percentile_ci`."""
    from harness.stats import percentile_ci as interval

    return interval(values, q, n_resamples=n_resamples, seed=seed, clusters=clusters)


def _meets(ok: pd.DataFrame, slo: Mapping[str, float]) -> pd.Series:
    met = pd.Series(True, index=ok.index)
    for key, column in (("ttft_ms", "ttft_s"), ("itl_ms", "itl_s"), ("e2e_ms", "e2e_s")):
        if key in slo:
            values = ok[column].astype(float) * 1000
            within = values <= slo[key]  # False for a missing value
            # A missing ITL (fewer than two text chunks) is not applicable, not a miss;
            # a missing TTFT or E2E is.
            met &= (within | values.isna()) if key == "itl_ms" else within
    return met


def _reasoning(ok: pd.DataFrame) -> dict[str, Any]:
    """Reasoning time p50 and reasoning tokens mean, for groups that have reasoning rows."""
    if not {"reasoning_chunks", "reasoning_s", "reasoning_tokens_client"} <= set(ok.columns):
        return {}  # rows from before these columns existed
    reasoned = ok[(ok["reasoning_chunks"].fillna(0) > 0) | (ok["reasoning_tokens"].fillna(0) > 0)]
    if not len(reasoned):
        return {}
    seconds = reasoned["reasoning_s"].dropna().to_numpy(dtype=float)
    # The provider's count where it gives one, else the count from the stream.
    tokens = reasoned["reasoning_tokens"].fillna(reasoned["reasoning_tokens_client"])
    return {
        "reasoning_p50_ms": float(np.percentile(seconds, 50)) * 1000 if len(seconds) else None,
        "reasoning_tokens_mean": float(tokens.mean()) if tokens.notna().any() else None,
    }


def summarize(
    rows: pd.DataFrame,
    slos: Mapping[str, Mapping[str, float]] | None = None,
    *,
    intervals: bool = True,
) -> pd.DataFrame:
    """One line per (suite, load level, provider): volume, errors, percentiles with CIs,
    throughput, goodput against the suite's SLOs, speed and cost.

    A NaN or infinite value in a row gives NaN/inf in its line, without a warning;
    infinite durations are left out of the percentiles (they measured nothing).
    ``intervals=False`` leaves every ``*_ci_low``/``*_ci_high`` empty and skips the
    work of computing them (``history`` of a metric that is not an interval).
    """
    with np.errstate(all="ignore"):
        return _summarize(rows, slos, intervals)


def _summarize(
    rows: pd.DataFrame,
    slos: Mapping[str, Mapping[str, float]] | None = None,
    intervals: bool = True,
) -> pd.DataFrame:
    slos = slos or {}
    rows = rows.copy(deep=False)  # columns are replaced, never written into (copy-on-write)
    # Warm-ups are left out of every group (by position: the rows are not copied).
    kept = None
    if "warmup" in rows:
        kept = (rows["warmup"].fillna(False).astype(bool) == False).to_numpy()  # noqa: E712
    rows["load_level"] = rows["load_level"].fillna("-") if "load_level" in rows else "-"
    if "case_id" in rows:
        # Each row's case as an integer, once for every group (the text is hashed once,
        # not per group and score): the bootstrap numbers its clusters itself, by first
        # appearance, and these codes keep the sorted order of the ids (per-case means).
        rows[_CASE_CODE] = _sorted_case_codes(rows)
    out = []
    # Each group's rows as groupby would give them, gathering only what a line reads.
    groups = split(rows, GROUP, where=kept, skip=UNREAD_BY_SUMMARY)
    for (suite, level, provider), group in groups:
        ok = _where(group, group["status"] == "ok")
        # A row served from the response cache was not measured: no latency
        # statistic (percentiles, throughput, goodput) may use it.
        timed = (
            _where(ok, ~ok["from_cache"].fillna(False).astype(bool)) if "from_cache" in ok else ok
        )
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
        line.update(_retry_counts(group))
        # Each measured row's case (factorised once: most metrics measure every row).
        case_codes = timed[_CASE_CODE].to_numpy() if _CASE_CODE in timed else None
        for name, (column, scale, unit) in METRICS.items():
            measured = timed[column].dropna()
            # An infinite duration measured nothing.
            measured = measured[np.isfinite(measured.to_numpy(dtype=float))]
            values = measured.to_numpy(dtype=float) * scale
            # Every percentile from one partition: each is what np.percentile(values, p)
            # gives alone (the same order statistics, the same interpolation).
            found = np.percentile(values, PERCENTILES) if len(values) else [None] * len(PERCENTILES)
            for p, value in zip(PERCENTILES, found, strict=True):
                line[f"{name}_p{p}{unit}"] = None if value is None else float(value)
            # Repeats of a case move together in the bootstrap (one unit of evidence).
            cases = (
                case_codes
                if case_codes is None or measured.index.equals(timed.index)
                else timed.loc[measured.index, _CASE_CODE].to_numpy()
            )
            low, high = (
                percentile_ci(values, 50, clusters=cases)
                if len(values) and intervals
                else (None, None)
            )
            line[f"{name}_p50{unit}_ci_low"], line[f"{name}_p50{unit}_ci_high"] = low, high
        # Throughput over the wall-clock span of the measured requests.
        # In float seconds from the first start: a non-finite or absurd e2e_s in a
        # row cannot overflow a timestamp (it ends nothing).
        span = 0.0
        if len(timed):
            offsets = (timed["started_at"] - timed["started_at"].min()).dt.total_seconds()
            ends = offsets.to_numpy(dtype=float, na_value=np.nan) + timed["e2e_s"].to_numpy(
                dtype=float, na_value=np.nan
            )
            ends = ends[np.isfinite(ends)]
            span = float(ends.max()) if len(ends) else 0.0
        line["throughput_rps"] = len(timed) / span if span > 0 else None
        tokens = ok["output_tokens"].fillna(ok.get("output_tokens_client", np.nan))
        timed_tokens = tokens[timed.index]
        line["output_tokens_per_s"] = float(timed_tokens.sum()) / span if span > 0 else None
        line["output_tokens_mean"] = float(tokens.mean()) if len(tokens.dropna()) else None
        line.update(_reasoning(ok))
        line.update(tool_timing(timed))  # answers that call tools (tool_call suites)
        slo = slos.get(str(suite))
        if slo:
            met = _meets(timed, slo)
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
        line.update(_quality(group, line["cost_usd"], intervals))
        line.update(_queueing(group, ok, str(level), intervals))
        line.update(workload_figures(group))  # chat and prompt_cache (report/workloads.py)
        out.append(line)
        del group, ok, timed  # before the next group is gathered: one group in memory at a time
    table = pd.DataFrame(out)
    return table.sort_values(GROUP, kind="stable") if len(table) else table


def _where(frame: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    """``frame[mask]``, and ``frame`` itself when the mask keeps every row (the same
    rows: no copy of every column)."""
    return frame if bool(mask.all()) else frame[mask]


# Open-loop levels (labels "rate=…", "poisson=…"): a level is over capacity when
# its requests could not be sent as fast as they were scheduled, i.e. the span of
# send times exceeds the span of scheduled arrivals by more than 5 % plus 50 ms.
# The relative part ignores the ordinary spread of a loaded client's timers over
# a long phase; the absolute part keeps a 10-request phase (a 0.45 s span at
# 20 req/s) from being flagged because its last send was a few ms late.
OPEN_LOOP_PATTERNS = ("rate", "poisson", "gamma", "trace", "capacity")
OVER_CAPACITY_REL = 0.05
OVER_CAPACITY_SLACK_S = 0.05


def _open_loop_rates(group: pd.DataFrame) -> dict[str, Any]:
    """Offered and achieved request rates of one open-loop level.

    Both are (n - 1) / span over the same n rows: of the scheduled arrivals
    (``scheduled_s``) for the offered rate, of the send moments (``sent_s``, the
    final attempt's) for the achieved one. So a level that keeps up shows equal
    rates whatever its length, and a capped one shows the rate the cap let out.
    """
    timed = group[["scheduled_s", "sent_s"]].dropna()
    n = len(timed)
    if n < 2:
        return {}
    scheduled_span = float(timed["scheduled_s"].max() - timed["scheduled_s"].min())
    sent_span = float(timed["sent_s"].max() - timed["sent_s"].min())
    if scheduled_span <= 0:
        return {}
    limit = scheduled_span * (1 + OVER_CAPACITY_REL) + OVER_CAPACITY_SLACK_S
    return {
        "offered_rps": (n - 1) / scheduled_span,
        "achieved_rps": (n - 1) / sent_span if sent_span > 0 else None,
        "over_capacity": bool(sent_span > limit),
    }


def is_open_loop(level: str) -> bool:
    """Whether a load level's label names an open-loop pattern."""
    return level.split("=", 1)[0] in OPEN_LOOP_PATTERNS


def _queueing(
    group: pd.DataFrame, ok: pd.DataFrame, level: str, intervals: bool = True
) -> dict[str, Any]:
    """Queue wait of every sent request; for open-loop levels also the latency users
    see (from the scheduled arrival) and offered vs achieved rate."""
    if "queue_wait_s" not in group or group["queue_wait_s"].isna().all():
        return {}
    waits = group["queue_wait_s"].dropna().to_numpy(dtype=float) * 1000
    out: dict[str, Any] = {
        "queue_wait_p50_ms": float(np.percentile(waits, 50)),
        "queue_wait_p99_ms": float(np.percentile(waits, 99)),
    }
    if not is_open_loop(level):
        return out
    for name, column in (("user_ttft", "ttft_s"), ("user_e2e", "e2e_s")):
        values = (ok["queue_wait_s"] + ok[column]).dropna().to_numpy(dtype=float) * 1000
        for p in (50, 90, 99):
            out[f"{name}_p{p}_ms"] = float(np.percentile(values, p)) if len(values) else None
        low, high = percentile_ci(values, 50) if len(values) and intervals else (None, None)
        out[f"{name}_p50_ms_ci_low"], out[f"{name}_p50_ms_ci_high"] = low, high
    out.update(_open_loop_rates(group))
    out.update(send_error(group))
    return out


def send_error(group: pd.DataFrame) -> dict[str, Any]:
    """How far send times were from the schedule: mean absolute error and p99 (ms) of
    ``sent_s - scheduled_s`` over the level's sent requests (a trace replay's fidelity)."""
    if "sent_s" not in group or "scheduled_s" not in group:
        return {}
    error = (group["sent_s"] - group["scheduled_s"]).abs().dropna().to_numpy(dtype=float)
    if not len(error):
        return {}
    return {
        "send_mae_ms": float(error.mean()) * 1000,
        "send_error_p99_ms": float(np.percentile(error, 99)) * 1000,
    }


def open_loop_capacity(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Offered vs achieved rate of every open-loop level (for the manifest)."""
    if "scheduled_s" not in rows or "load_level" not in rows:
        return []
    if "warmup" in rows:
        rows = rows[rows["warmup"].fillna(False).astype(bool) == False]  # noqa: E712
    out = []
    for (suite, level, provider), group in rows.groupby(GROUP, sort=False):
        if not is_open_loop(str(level)):
            continue
        rates = _open_loop_rates(group)
        if rates:
            out.append({"suite": suite, "load_level": level, "provider": provider, **rates})
    return out


def _retry_counts(group: pd.DataFrame) -> dict[str, Any]:
    """Requests that needed more than one attempt, and attempts that failed.

    From ``attempts``: a successful request had ``attempts - 1`` failed attempts, a
    failed one ``attempts`` (a request never sent has 0).
    """
    if "attempts" not in group or group["attempts"].isna().all():
        return {}
    attempts = group["attempts"].fillna(0).astype(int)
    succeeded = (group["status"] == "ok").astype(int)
    return {
        "retried": int((attempts > 1).sum()),
        "failed_attempts": int((attempts - succeeded).clip(lower=0).sum()),
    }


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


def _quality(group: pd.DataFrame, cost: float | None, intervals: bool = True) -> dict[str, Any]:
    """Mean scores with CIs, abstention behaviour, and $ per correct answer.

    A score is averaged per case first (its repeats are one unit of evidence), so the
    mean is over cases and the bootstrap resamples cases, not rows."""
    from harness.report.quality import group_kind, primary_metric, quality_columns
    from harness.scoring import bootstrap_ci

    out: dict[str, Any] = {}
    kind = group_kind(group)  # one suite per group: its kind's own score columns
    cases = None
    for column in quality_columns(kind):
        if column not in group or group[column].isna().all():
            continue
        if cases is None:
            cases = (
                group[_CASE_CODE].to_numpy() if _CASE_CODE in group else _sorted_case_codes(group)
            )
        values = _case_means(group[column], cases)
        if intervals:
            mean, low, high = bootstrap_ci(values, n_resamples=1000, seed=0)
        else:
            present = values[~np.isnan(values)]  # bootstrap_ci's point estimate
            mean, low, high = float(np.mean(present)) if present.size else math.nan, None, None
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
    primary = primary_metric(kind)
    correct = float(group[primary].sum()) if primary in group else 0.0
    out["usd_per_correct"] = cost / correct if cost is not None and correct > 0 else None
    return out


_CASE_CODE = "_case_code"  # the column _summarize adds to its rows: _sorted_case_codes


def _sorted_case_codes(group: pd.DataFrame) -> np.ndarray[Any, Any]:
    """Each row's case as an integer, in the sorted order of the case ids (a missing id
    last, one case of its own): what ``groupby("case_id", sort=True, dropna=False)``
    orders by, without hashing the text once per score column."""
    codes, _ = pd.factorize(group["case_id"], sort=True, use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64)


def _case_means(scores: pd.Series, cases: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``per_case(group, column, "provider").iloc[:, 0]`` of a group of one provider, as
    float64: the mean score of each case that has one, in sorted case order. The same
    groupby mean over the same rows in the same order (so the same sums), keyed by the
    case codes instead of the text."""
    present = scores.notna().to_numpy()
    means = pd.Series(scores.to_numpy()[present]).groupby(cases[present], sort=True).mean()
    return np.asarray(means.to_numpy(dtype=np.float64), dtype=np.float64)


def unpaired_providers(rows: pd.DataFrame) -> dict[str, str]:
    """Providers a paired test leaves out, and why: none of their measured requests succeeded."""
    if not len(rows) or "status" not in rows or "provider" not in rows:
        return {}
    rows = rows[[c for c in ("status", "provider", "warmup") if c in rows]]  # what it reads
    if "warmup" in rows:
        rows = rows[rows["warmup"].fillna(False).astype(bool) == False]  # noqa: E712
    counts = (rows["status"] == "ok").groupby(rows["provider"]).agg(["sum", "size"])
    return {
        str(name): f"none of its {int(n)} requests succeeded"
        for name, (good, n) in counts.iterrows()
        if good == 0
    }


def paired_quality(rows: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Every pair of providers on the same cases of a suite: is A better than B?

    ``metric``: the score compared; by default each suite's own primary score
    (:mod:`harness.report.quality`: rag_qa ``exact_match_abstain``, tool_call
    ``tool_exact``, structured ``field_accuracy``), named in the ``metric`` column.

    One value per case and provider (the mean over its repeats and load levels), so ``n``
    counts cases, not requests. Paired bootstrap of the mean difference (95 % CI,
    two-sided p) and the exact sign test (McNemar's exact test for 0/1 scores); the
    verdict needs both (:func:`harness.scoring.compare_paired`). Only cases both
    providers answered are compared.
    """
    from harness.report.quality import PRIMARY_SCORE, primary_by_suite, primary_scores
    from harness.scoring import compare_paired, per_case

    # A provider without one successful request is not compared (unpaired_providers).
    unpaired = list(unpaired_providers(rows)) if len(rows) else []
    rows = rows[~rows["provider"].isin(unpaired)] if unpaired else rows  # no copy of every column
    names: dict[Any, str] = {}
    if metric is None:
        names = primary_by_suite(rows)
        # Only the columns the comparison reads: a copy of every column of 1M rows is not.
        keep = [c for c in ("suite", "case_id", "provider", "warmup") if c in rows]
        rows = rows[keep].assign(**{PRIMARY_SCORE: primary_scores(rows)})
    metric = metric or PRIMARY_SCORE
    if metric not in rows or rows[metric].isna().all():
        return pd.DataFrame()
    scored = rows[rows[metric].notna()]
    if "warmup" in scored:
        scored = scored[scored["warmup"].fillna(False).astype(bool) == False]  # noqa: E712
    out = []
    for suite, group in scored.groupby("suite", sort=False):
        wide = per_case(group, metric, "provider")
        providers = list(wide.columns)
        for i, a in enumerate(providers):
            for b in providers[i + 1 :]:
                both = wide[[a, b]].dropna()
                if len(both) < 2:
                    continue
                test = compare_paired(both[a].to_numpy(), both[b].to_numpy(), seed=0)
                out.append(
                    {
                        "suite": suite,
                        "metric": names.get(suite, metric),
                        "a": a,
                        "b": b,
                        "n": test["n"],
                        "mean_a": test["mean_a"],
                        "mean_b": test["mean_b"],
                        "diff": test["mean_diff"],
                        "diff_ci_low": test["ci_low"],
                        "diff_ci_high": test["ci_high"],
                        "p_bootstrap": test["p_bootstrap"],
                        "p_mcnemar": test["p_exact"],
                        "verdict": _verdict(a, b, test["mean_diff"], test["significant"]),
                    }
                )
    return pd.DataFrame(out)


def _verdict(a: str, b: str, diff: float, significant: bool) -> str:
    # Both tests must agree (see compare_paired): the bootstrap interval is too narrow
    # with few discordant cases, where the exact test is the honest one.
    if not significant:
        return "no significant difference"
    return f"{a} better" if diff > 0 else f"{b} better"


COMPACT = {
    "suite": "suite",
    "load_level": "load",
    "provider": "provider",
    "requests": "n",
    "error_rate": "errors",
    "retried": "retried",
    "failed_attempts": "failed att.",
    "ttft_p50_ms": "TTFT p50 ms",
    "ttft_p50_ci": "TTFT p50 95% CI",
    "ttft_p95_ms": "TTFT p95",
    "ttft_tool_p50_ms": "tool TTFT p50 ms",
    "itl_p50_ms": "ITL p50 ms",
    "e2e_p50_ms": "E2E p50 ms",
    "e2e_p95_ms": "E2E p95",
    "output_tps_p50": "tok/s p50",
    "reasoning_p50_ms": "reasoning p50 ms",
    "throughput_rps": "req/s",
    "offered_rps": "offered req/s",
    "achieved_rps": "sent req/s",
    "over_capacity": "over capacity",
    "queue_wait_p50_ms": "queue p50 ms",
    "user_ttft_p50_ms": "user TTFT p50",
    "goodput": "goodput",
    "quality": "EM (abstain) [95% CI]",  # or the kinds' own primary scores, see below
    "usd_per_1k_requests": "$/1k req",
    "usd_per_correct": "$/correct",
}


def compact(table: pd.DataFrame) -> pd.DataFrame:
    """The columns a person reads first, formatted for a terminal or a pull request."""
    return _compact_parts(table)[0]


def _compact_parts(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """:func:`compact`'s table (every cell text, formatted by its column's meaning, see
    :mod:`harness.report.text`) and each column's alignment."""
    from harness.report.text import MISSING, cell_text, text_cells

    shown = table.copy()
    if "ttft_p50_ms_ci_low" in shown:
        shown["ttft_p50_ci"] = [
            MISSING if pd.isna(lo) else f"{cell_text(lo, 'ms')}–{cell_text(hi, 'ms')}"
            for lo, hi in zip(
                shown["ttft_p50_ms_ci_low"], shown["ttft_p50_ms_ci_high"], strict=True
            )
        ]
    quality_label = _primary_quality_cells(shown)
    if "offered_rps" not in shown:  # queue waits matter to the reader beside open-loop rates
        shown = shown.drop(columns=["queue_wait_p50_ms"], errors="ignore")
    if "over_capacity" in shown:
        shown["over_capacity"] = shown["over_capacity"].map(
            lambda v: MISSING if pd.isna(v) else ("OVER" if v else "no")
        )
    if "load_level" in shown and (shown["load_level"] == "-").all():
        shown = shown.drop(columns=["load_level"])
    keep = [c for c in COMPACT if c in shown]
    # Kinds come from the summary's own column names (usd_per_1k_requests is dollars,
    # error_rate a percentage, *_ms milliseconds), before they are renamed for reading.
    rows, align = text_cells(shown[keep], missing={"usd_per_1k_requests": "no price"})
    align = [
        "right" if c in ("ttft_p50_ci", "quality") else a for c, a in zip(keep, align, strict=True)
    ]
    names = [COMPACT[c] if c != "quality" else quality_label for c in keep]
    return pd.DataFrame(rows, columns=names, dtype=object), align


def _primary_quality_cells(shown: pd.DataFrame) -> str:
    """Fill ``shown["quality"]`` with each line's primary score and CI; returns the header.

    Each line's primary is its kind's (harness.report.quality): a line has the score
    columns of one kind only. With several kinds in one table each cell names its score.
    """
    from harness.report.quality import QUALITY_BY_KIND, primary_label
    from harness.report.text import MISSING

    primaries = [q.primary for q in QUALITY_BY_KIND.values() if q.primary in shown]
    if not primaries:
        return COMPACT["quality"]
    present = [p for p in primaries if shown[p].notna().any()] or primaries[:1]
    cells = []
    for _, line in shown.iterrows():
        metric = next((p for p in present if pd.notna(line[p])), None)
        if metric is None:
            cells.append(MISSING)
            continue
        m, lo, hi = line[metric], line[f"{metric}_ci_low"], line[f"{metric}_ci_high"]
        prefix = f"{primary_label(metric)} " if len(present) > 1 else ""
        cells.append(f"{prefix}{m:.3f} [{lo:.3f}, {hi:.3f}]")
    shown["quality"] = cells
    if len(present) == 1:
        return f"{primary_label(present[0])} [95% CI]"
    return "quality [95% CI]"


def render(table: pd.DataFrame, fmt: str, *, title: str | None = None) -> str:
    """Render the summary as ``table``/``markdown`` (compact) or ``csv``/``json`` (every column)."""
    if fmt == "csv":
        return str(table.to_csv(index=False))
    if fmt == "json":
        return str(table.to_json(orient="records", indent=2, date_format="iso"))
    from harness.report.text import render_text

    shown, align = _compact_parts(table)
    text = render_text(shown, fmt, align=align) if len(shown.columns) else ""
    if title:
        text = (f"### {title}\n\n" if fmt == "markdown" else f"{title}\n\n") + text
    return str(text)


def render_pairs(pairs: pd.DataFrame, fmt: str) -> str:
    """The paired comparison as a table: who is better, by how much, how sure."""
    from harness.report.text import render_text

    shown = pd.DataFrame(
        {
            "suite": pairs["suite"],
            "A vs B": pairs["a"] + " vs " + pairs["b"],
            "n": pairs["n"].astype(int),
            "A - B [95% CI]": [
                f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"
                for d, lo, hi in zip(
                    pairs["diff"], pairs["diff_ci_low"], pairs["diff_ci_high"], strict=True
                )
            ],
            "p (bootstrap)": pairs["p_bootstrap"],
            "p (McNemar)": pairs["p_mcnemar"],
            "verdict": pairs["verdict"],
        }
    )
    title = f"Paired comparison on the same cases ({', '.join(pairs['metric'].unique())})"
    head = f"### {title}\n\n" if fmt == "markdown" else f"{title}\n\n"
    kinds: dict[str, Kind] = {"n": "int", "p (bootstrap)": "p", "p (McNemar)": "p"}
    align = ["left", "left", "right", "right", "right", "right", "left"]
    return head + render_text(shown, fmt, kinds, align=align)
