"""What a person reads first: human headers with units, and the columns that matter.

A table keeps its column names (``ttft_p50_ms``: the name says how a value is formatted,
:func:`harness.report.export.column_kind`); only what is shown changes. :func:`header`
turns a name into a header with its unit (``TTFT p50 (ms)``), :func:`columns_for` picks the
columns of a summary that matter for the suite kinds present, and :func:`terminal_table`
drops the least important columns until the table fits the terminal, saying how many it
left out (``--wide`` shows every column, ``--columns a,b`` the ones named).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

from harness.report.export import Kind, name_kind

HEADERS: dict[str, str] = {
    "suite": "suite",
    "load_level": "load",
    "provider": "provider",
    "model": "model",
    "requests": "requests",
    "errors": "errors",
    "error_rate": "errors (%)",
    "rate_limited": "rate limited",
    "retried": "retried",
    "failed_attempts": "failed attempts",
    "throughput_rps": "throughput (req/s)",
    "output_tokens_per_s": "output (tok/s)",
    "output_tokens_mean": "output tokens (mean)",
    "output_tps_p50": "speed p50 (tok/s)",
    "goodput": "goodput (%)",
    "goodput_rps": "goodput (req/s)",
    "cost_usd": "cost ($)",
    "usd_per_1k_requests": "$ per 1k requests",
    "usd_per_correct": "$ per correct answer",
    "exact_match_abstain": "EM (abstain ok)",
    "exact_match": "exact match",
    "f1_abstain": "F1 (abstain ok)",
    "f1": "F1",
    "contains": "contains answer",
    "judge_correctness": "judge correctness",
    "tool_exact": "tool exact",
    "tool_valid": "tool valid",
    "tool_arg_precision": "arg precision",
    "tool_arg_recall": "arg recall",
    "ttft_tool_p50_ms": "tool TTFT p50 (ms)",
    "field_accuracy": "field accuracy",
    "json_valid": "JSON valid",
    "schema_valid": "schema valid",
    "turn_score": "turn score",
    "usd_per_conversation": "$ per conversation",
    "ttft_cold_p50_ms": "TTFT cold p50 (ms)",
    "ttft_warm_p50_ms": "TTFT warm p50 (ms)",
    "cache_hit_rate": "cache hit rate (%)",
    "cache_saving": "cache saving (%)",
    "quality": "quality",
    "score": "score",
    "rank": "rank",
    "rank_min": "best rank",
    "rank_max": "worst rank",
    "pareto": "Pareto front",
    "missing": "missing",
    "over_capacity": "over capacity",
    "offered_rps": "offered (req/s)",
    "achieved_rps": "sent (req/s)",
    "clock_untrusted": "clock untrusted",
    "metric": "metric",
    "change": "change",
    "change_rel": "change (%)",
    "p_value": "p",
    "significant": "significant",
    "regression": "regression",
    "threshold": "threshold",
    "test": "test",
    "check": "check",
    "result": "result",
    "detail": "detail",
}
_WORDS = {"ttft": "TTFT", "itl": "ITL", "e2e": "E2E", "tps": "tok/s", "ci": "CI", "usd": "$"}
_UNITS: dict[Kind, str] = {"ms": "ms", "seconds": "s", "rate": "%", "usd": "$"}

SUMMARY_COLUMNS: dict[str, tuple[str, ...]] = {
    # Per suite kind, in order of importance: the first columns survive a narrow terminal.
    # The kinds' order is the order of importance too (quality decides, then speed).
    "rag_qa": (
        "provider",
        "load_level",
        "exact_match_abstain",
        "exact_match_abstain_ci_low",
        "exact_match_abstain_ci_high",
        "error_rate",
        "ttft_p50_ms",
        "usd_per_1k_requests",
        "usd_per_correct",
        "e2e_p95_ms",
        "f1_abstain",
        "judge_correctness",
        "requests",
    ),
    "latency": (
        "provider",
        "load_level",
        "ttft_p50_ms",
        "e2e_p95_ms",
        "error_rate",
        "usd_per_1k_requests",
        "ttft_p95_ms",
        "e2e_p50_ms",
        "output_tps_p50",
        "throughput_rps",
        "requests",
        "goodput",
    ),
    "tool_call": (
        "provider",
        "load_level",
        "tool_exact",
        "tool_exact_ci_low",
        "tool_exact_ci_high",
        "tool_valid",
        "error_rate",
        "ttft_tool_p50_ms",
        "usd_per_1k_requests",
        "usd_per_correct",
        "tool_arg_precision",
        "tool_arg_recall",
        "requests",
    ),
    "structured": (
        "provider",
        "load_level",
        "field_accuracy",
        "field_accuracy_ci_low",
        "field_accuracy_ci_high",
        "schema_valid",
        "json_valid",
        "error_rate",
        "ttft_p50_ms",
        "usd_per_1k_requests",
        "e2e_p95_ms",
        "requests",
    ),
    "chat": (
        "provider",
        "load_level",
        "turn_score",
        "turn_score_ci_low",
        "turn_score_ci_high",
        "error_rate",
        "ttft_p50_ms",
        "usd_per_conversation",
        "e2e_p95_ms",
        "requests",
    ),
    "prompt_cache": (
        "provider",
        "load_level",
        "ttft_cold_p50_ms",
        "ttft_warm_p50_ms",
        "cache_hit_rate",
        "cache_saving",
        "error_rate",
        "usd_per_1k_requests",
        "requests",
    ),
    "cost": (
        "provider",
        "load_level",
        "usd_per_1k_requests",
        "cost_usd",
        "output_tokens_mean",
        "error_rate",
        "e2e_p50_ms",
        "requests",
    ),
}
LEADERBOARD_COLUMNS = (
    "rank",
    "provider",
    "score",
    "quality",
    "quality_ci_low",
    "quality_ci_high",
    "ttft_p50_ms",
    "usd_per_1k_requests",
    "error_rate",
    "pareto",
    "e2e_p95_ms",
    "missing",
)
DIFF_COLUMNS = (
    "provider",
    "metric",
    "a",
    "b",
    "change",
    "significant",
    "regression",
    "suite",
    "load_level",
    "ci_low",
    "ci_high",
    "p_value",
    "threshold",
    "test",
)


def diff_columns(table: pd.DataFrame) -> list[str]:
    """:data:`DIFF_COLUMNS`, with the suite and the load level moved up front when they
    vary: a sweep's rows are told apart by their level."""
    front = [c for c in ("suite", "load_level") if c in table and table[c].nunique() > 1]
    rest = [c for c in DIFF_COLUMNS if c not in front]
    return [rest[0], *front, *rest[1:]]


def header(column: str) -> str:
    """A column's header as people read it, with its unit: ``TTFT p50 (ms)``."""
    if column in HEADERS:
        return HEADERS[column]
    bound = re.search(r"_ci_(low|high)$", column)
    if bound:
        return f"{header(column[: bound.start()])} CI {bound.group(1)}"
    kind = name_kind(column, [column])
    base = re.sub(r"_(ms|s|usd|rate)$", "", column)
    base = re.sub(r"^usd_", "", base)
    words = [_WORDS.get(w, w) for w in base.split("_") if w]
    text = " ".join(words) or column
    unit = _UNITS.get(kind) if kind is not None else None
    return f"{text} ({unit})" if unit else text


def headers(columns: Iterable[str]) -> dict[str, str]:
    """:func:`header` of each column, made unique (a clash keeps the column name)."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for column in columns:
        text = header(str(column))
        if text in seen:
            text = str(column)
        seen.add(text)
        out[str(column)] = text
    return out


INFORMATIVE = (
    "retried",
    "failed_attempts",
    "over_capacity",
    "offered_rps",
    "achieved_rps",
    "queue_wait_p50_ms",
    "user_ttft_p50_ms",
    "reasoning_p50_ms",
    "goodput",
)
"""Summary columns shown beside a kind's own when some row has a value (not 0/False)."""


def _says(values: pd.Series) -> bool:
    present = values.dropna()
    if not len(present):
        return False
    if values.name in ("retried", "failed_attempts"):
        return bool((pd.to_numeric(present, errors="coerce").fillna(0) != 0).any())
    return True


def columns_for(table: pd.DataFrame, kinds: Iterable[str]) -> list[str]:
    """The summary columns that matter for these suite kinds, most important first;
    ``load_level`` only when some row has a level. Unknown kinds count as ``latency``."""
    chosen: list[str] = []
    # Round robin over the kinds: each kind's most important columns come first.
    order = {kind: i for i, kind in enumerate(SUMMARY_COLUMNS)}  # quality first
    ranked = sorted(dict.fromkeys(kinds), key=lambda k: order.get(k, len(order)))
    lists = [SUMMARY_COLUMNS.get(k, SUMMARY_COLUMNS["latency"]) for k in ranked]
    for i in range(max((len(c) for c in lists), default=0)):
        for names in lists:
            if i < len(names) and names[i] in table and names[i] not in chosen:
                chosen.append(names[i])
    # Columns that matter only when they say something (retries happened, a level was
    # open-loop or over capacity, a model reasoned): right after the error rate.
    telling = [c for c in INFORMATIVE if c in table and c not in chosen and _says(table[c])]
    if "offered_rps" not in telling:  # queue waits matter beside open-loop rates only
        telling = [c for c in telling if c != "queue_wait_p50_ms"]
    at = chosen.index("error_rate") + 1 if "error_rate" in chosen else len(chosen)
    chosen[at:at] = telling
    if "load_level" in chosen and (table["load_level"].astype(str) == "-").all():
        chosen.remove("load_level")
    if "suite" in table and table["suite"].nunique() > 1:
        chosen.insert(0, "suite")
    return chosen


def _is_bound_of(name: str, names: Sequence[str]) -> bool:
    """``x_ci_low``/``x_ci_high`` whose metric ``x`` is shown: drawn in the metric's cell."""
    match = re.search(r"_ci_(low|high)$", name)
    return match is not None and name[: match.start()] in names


def terminal_width() -> int:
    """The terminal's width (``COLUMNS`` first), 100 when it cannot be told."""
    return shutil.get_terminal_size((100, 24)).columns


def _width(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def terminal_table(
    table: pd.DataFrame,
    priority: Sequence[str],
    *,
    fmt: str = "table",
    width: int | None = None,
    wide: bool = False,
    columns: Sequence[str] | None = None,
    missing: Mapping[str, str] | None = None,
    kinds: Mapping[str, Kind] | None = None,
    right: Iterable[str] = (),
) -> tuple[str, list[str]]:
    """The table as text that fits ``width`` (the terminal's by default), and the columns
    left out. ``priority`` orders the columns to show (the first survive); ``wide`` shows
    every column of ``table``; ``columns`` exactly those named (ValueError for unknown).
    ``right`` names text columns to align right (numbers formatted beforehand)."""
    from harness.report.export import NUMERIC_KINDS, is_missing
    from harness.report.text import cell_text, column_kinds, render_text

    if columns:
        unknown = [c for c in columns if c not in table.columns]
        if unknown:
            raise ValueError(
                f"unknown column {', '.join(unknown)}; columns: {', '.join(map(str, table))}"
            )
        shown = list(columns)
    elif wide:
        shown = [str(c) for c in table.columns]
    else:
        shown = [c for c in priority if c in table.columns]
    limit = width or terminal_width()
    pushed = set(right)
    dropped: list[str] = []
    miss = {**(missing or {}), "usd_per_1k_requests": "no price"}

    def render(names: list[str]) -> str:
        # Kinds come from the raw names (ttft_p50_ms is in ms), then headers are swapped in;
        # a metric with its interval becomes one cell, "0.792 [0.667, 0.896]".
        names = [n for n in names if not _is_bound_of(n, names)]
        frame = table[names].copy()
        every = dict(zip(table.columns, column_kinds(table, kinds), strict=True))
        resolved = [every[c] for c in names]
        align = [
            "right" if k in NUMERIC_KINDS or c in pushed else "left"
            for c, k in zip(names, resolved, strict=True)
        ]
        named = headers(names)
        for i, (column, kind) in enumerate(zip(names, resolved, strict=True)):
            low, high = f"{column}_ci_low", f"{column}_ci_high"
            if low in table and high in table and kind == "score":
                frame[column] = [
                    cell_text(v, kind) + f" [{cell_text(lo, kind)}, {cell_text(hi, kind)}]"
                    if not is_missing(lo)
                    else cell_text(v, kind)
                    for v, lo, hi in zip(table[column], table[low], table[high], strict=True)
                ]
                resolved[i] = "text"
                named[column] = f"{named[column]} [95% CI]"
        human_kinds = {named[c]: k for c, k in zip(names, resolved, strict=True)}
        human_missing = {named[c]: v for c, v in miss.items() if c in names}
        renamed = frame.rename(columns=named)
        return render_text(renamed, fmt, human_kinds, human_missing, align=align)

    text = render(shown) if shown else ""
    while shown and not wide and not columns and fmt == "table" and _width(text) > limit:
        if len(shown) <= 2:
            break
        dropped.insert(0, shown.pop())
        text = render(shown)
    if not wide and not columns:
        dropped += [str(c) for c in table.columns if c not in shown and c not in dropped]
    return text, dropped


def suite_kinds(rows: pd.DataFrame) -> dict[str, str]:
    """Suite name → its kind, from the per-request rows."""
    if "suite_kind" not in rows or "suite" not in rows:
        return {}
    pairs = rows[["suite", "suite_kind"]].dropna().drop_duplicates("suite")
    return {str(s): str(k) for s, k in zip(pairs["suite"], pairs["suite_kind"], strict=True)}


def per_suite(table: pd.DataFrame, kinds: Mapping[str, str]) -> list[tuple[str, str, pd.DataFrame]]:
    """The summary split by suite: (suite, kind, its rows), in the table's order."""
    if "suite" not in table:
        return [("", "latency", table)]
    out = []
    for suite in dict.fromkeys(str(s) for s in table["suite"]):
        part = table[table["suite"].astype(str) == suite].reset_index(drop=True)
        out.append((suite, kinds.get(suite, "latency"), part))
    return out


def summary_text(
    table: pd.DataFrame,
    kinds: Mapping[str, str],
    *,
    fmt: str = "table",
    width: int | None = None,
    wide: bool = False,
    columns: Sequence[str] | None = None,
) -> tuple[str, list[str]]:
    """The summary as one table per suite, each with the columns its kind needs, fitted to
    ``width``; and every column some suite left out (for the ``--wide`` hint)."""
    parts: list[str] = []
    left: list[str] = []
    for suite, kind, part in per_suite(table, kinds):
        priority = [c for c in columns_for(part, [kind]) if c != "suite"]
        if "over_capacity" in part:  # a flag people must not miss: OVER, not True
            part = part.assign(
                over_capacity=[
                    "-" if v is None or v != v else ("OVER" if v else "no")
                    for v in part["over_capacity"]
                ]
            )
        text, dropped = terminal_table(
            part, priority, fmt=fmt, width=width, wide=wide, columns=columns
        )
        title = f"{suite} ({kind})" if suite else kind
        parts.append((f"#### {title}\n\n" if fmt == "markdown" else f"{title}\n") + text)
        left += [c for c in dropped if c not in left and not _is_bound_of(c, priority)]
    return "\n\n".join(parts), left


def more_columns_hint(dropped: Sequence[str]) -> str | None:
    """``(12 more columns: --wide, or --columns NAME,...)``, None when nothing was left out."""
    if not dropped:
        return None
    return f"({len(dropped)} more columns: --wide shows all, --columns picks, e.g. {dropped[0]})"


def pairs_text(pairs: pd.DataFrame, fmt: str = "table", width: int | None = None) -> str:
    """The paired quality comparison (:func:`harness.report.summary.paired_quality`) with a
    title, fitted to ``width``: the p-values go first when the terminal is narrow (the
    verdict already says whether both tests agree)."""
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
            "verdict": pairs["verdict"],
            "p (McNemar)": pairs["p_mcnemar"],
            "p (bootstrap)": pairs["p_bootstrap"],
        }
    )
    if shown["suite"].nunique() <= 1:
        shown = shown.drop(columns=["suite"])
    kinds: dict[str, Kind] = {"n": "int", "p (bootstrap)": "p", "p (McNemar)": "p"}
    text, _ = terminal_table(
        shown, list(shown.columns), fmt=fmt, width=width, kinds=kinds, right=["A - B [95% CI]"]
    )
    suite = f" of {pairs['suite'].iloc[0]}" if "suite" not in shown else ""
    title = f"Paired comparison on the same cases{suite} ({pairs['metric'].iloc[0]})"
    return (f"### {title}\n\n" if fmt == "markdown" else f"{title}\n\n") + text
