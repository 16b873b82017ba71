"""``load: {pattern: trace}``: replay a production trace's arrivals and lengths.

A trace is a file of rows (arrival time, input tokens, output tokens[, prefix]), JSON lines
or CSV, in one of these layouts (``trace_format``, detected from the columns by default):

- ``jsonl`` / ``csv`` (the harness's own): ``arrival_s``, ``input_tokens``,
  ``output_tokens``, and optionally ``prefix_id`` (rows of one id share their prompt's
  text up to the shorter length) or ``hash_ids`` (as Mooncake);
- ``mooncake`` (the public Mooncake traces, JSON lines): ``timestamp`` (ms),
  ``input_length``, ``output_length``, ``hash_ids`` (one id per 512-token block of the
  prompt: rows that start with the same ids share those blocks, as a prefix cache sees);
- ``azure`` (the Azure LLM inference traces, CSV): ``TIMESTAMP`` (a date and time),
  ``ContextTokens``, ``GeneratedTokens``.

Times are taken relative to the earliest row. The window keeps rows with
``start_s <= t < start_s + duration_s`` (trace seconds); a row is sent at
``(t - start_s) / speed`` from the phase start, so ``speed: 2`` replays twice as fast.
Each row becomes one request: a synthetic prompt of exactly its input tokens
(``o200k_base``; see :func:`harness.suites.lengths.word_prompt`) and ``max_tokens`` of its
output tokens (with the suite's ``ignore_eos``, servers that honour it answer exactly that).
"""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.request import RequestSpec
from harness.suites.lengths import MAX_LENGTH, word_prompt

if TYPE_CHECKING:
    from harness.suites.base import LoadConfig, PhaseSpec
    from harness.suites.latency import LatencySuite

MOONCAKE_BLOCK_TOKENS = 512
"""Tokens per ``hash_ids`` block in the Mooncake traces."""


@dataclass(frozen=True)
class TraceRow:
    """One traced request: when it arrived (s, trace time) and its lengths."""

    line: int  # in the file, for messages and case ids
    arrival_s: float
    input_tokens: int
    output_tokens: int
    prefix_id: str | None = None
    hash_ids: tuple[int, ...] | None = None


class TraceError(ValueError):
    """A trace file that cannot be read; the message names the file and the line."""


# Layout → (time column, its unit in seconds or "datetime", input column, output column).
LAYOUTS: dict[str, tuple[str, float | str, str, str]] = {
    "harness": ("arrival_s", 1.0, "input_tokens", "output_tokens"),
    "mooncake": ("timestamp", 0.001, "input_length", "output_length"),
    "azure": ("TIMESTAMP", "datetime", "ContextTokens", "GeneratedTokens"),
}


def _layout(columns: Sequence[str], path: Path, declared: str) -> str:
    if declared in ("mooncake", "azure"):
        return declared
    for name, (time_col, _, input_col, output_col) in LAYOUTS.items():
        if {time_col, input_col, output_col} <= set(columns):
            return name
    known = "; ".join(f"{n}: {', '.join((c[0], c[2], c[3]))}" for n, c in LAYOUTS.items())
    raise TraceError(f"{path}: columns {', '.join(columns)} match no trace layout ({known})")


def _records(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of each row of a JSON-lines or CSV file."""
    text = path.read_text(encoding="utf-8")
    as_csv = fmt in ("csv", "azure") or (fmt == "auto" and path.suffix.lower() == ".csv")
    if as_csv:
        reader = csv.DictReader(text.splitlines())
        for i, row in enumerate(reader):
            yield i + 2, dict(row)
        return
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TraceError(f"{path}:{i}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise TraceError(f"{path}:{i}: a trace row is a JSON object")
        yield i, record


def _number(value: Any, path: Path, line: int, column: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TraceError(f"{path}:{line}: {column} is {value!r}, not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise TraceError(f"{path}:{line}: {column} is {value!r}, not a finite number")
    return number


def _length(value: Any, path: Path, line: int, column: str, low: int) -> int:
    number = _number(value, path, line, column)
    if number != int(number) or not low <= number <= MAX_LENGTH:
        raise TraceError(
            f"{path}:{line}: {column} is {value!r}, not a token count ({low}..{MAX_LENGTH})"
        )
    return int(number)


def _timestamp(value: Any, path: Path, line: int, column: str) -> datetime:
    text = str(value).strip()
    head, dot, fraction = text.partition(".")
    if dot:  # Azure's stamps carry 7 fractional digits; datetime takes 6
        digits = "".join(c for c in fraction if c.isdigit())
        rest = fraction[len(digits) :]
        text = f"{head}.{digits[:6]}{rest}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise TraceError(f"{path}:{line}: {column} is {value!r}, not a date and time") from None


def read_trace(path: str | Path, fmt: str = "auto") -> list[TraceRow]:
    """Every row of a trace, sorted by arrival, times relative to the earliest row.

    Read once per file version (validation and the plan both need it)."""
    path = Path(path)
    stat = path.stat()
    return list(_read_trace(path, fmt, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _read_trace(path: Path, fmt: str, mtime_ns: int, size: int) -> tuple[TraceRow, ...]:
    rows: list[TraceRow] = []
    layout: str | None = None
    # Date-times are taken from the first one's, not the epoch: seconds since 1970 as a
    # float keep only ~0.2 µs, and differences of them lose digits.
    reference: datetime | None = None
    for line, record in _records(path, fmt):
        if layout is None:
            layout = _layout(list(record), path, fmt)
        time_col, unit, input_col, output_col = LAYOUTS[layout]
        for column in (time_col, input_col, output_col):
            if record.get(column) in (None, ""):
                raise TraceError(f"{path}:{line}: {column} is missing")
        if unit == "datetime":
            stamp = _timestamp(record[time_col], path, line, time_col)
            reference = reference or stamp
            try:
                arrival = (stamp - reference).total_seconds()
            except TypeError:
                raise TraceError(
                    f"{path}:{line}: {time_col} mixes stamps with and without a time zone"
                ) from None
        else:
            assert isinstance(unit, float)
            arrival = _number(record[time_col], path, line, time_col) * unit
        hash_ids = record.get("hash_ids")
        if hash_ids is not None and not (
            isinstance(hash_ids, list) and all(isinstance(h, int) for h in hash_ids)
        ):
            raise TraceError(f"{path}:{line}: hash_ids is {hash_ids!r}, not a list of integers")
        prefix = record.get("prefix_id")
        rows.append(
            TraceRow(
                line=line,
                arrival_s=arrival,
                input_tokens=_length(record[input_col], path, line, input_col, 1),
                # A traced answer of 0 tokens still asks for one: max_tokens must be >= 1.
                output_tokens=max(1, _length(record[output_col], path, line, output_col, 0)),
                prefix_id=None if prefix in (None, "") else str(prefix),
                hash_ids=None if hash_ids is None else tuple(hash_ids),
            )
        )
    if not rows:
        raise TraceError(f"{path}: the trace has no rows")
    rows.sort(key=lambda r: r.arrival_s)
    first = rows[0].arrival_s
    return tuple(
        TraceRow(
            r.line, r.arrival_s - first, r.input_tokens, r.output_tokens, r.prefix_id, r.hash_ids
        )
        for r in rows
    )


def window(
    rows: Sequence[TraceRow], start_s: float, duration_s: float | None, speed: float
) -> list[tuple[float, TraceRow]]:
    """(send offset, row) of the rows inside the window, scaled by ``speed``."""
    end = float("inf") if duration_s is None else start_s + duration_s
    return [((r.arrival_s - start_s) / speed, r) for r in rows if start_s <= r.arrival_s < end]


@functools.lru_cache(maxsize=4096)
def _block(seed: str, n_tokens: int) -> str:
    return word_prompt(n_tokens, seed)


def prompt_for(row: TraceRow, seed: int) -> str:
    """A prompt of exactly ``row.input_tokens`` tokens; shared prefixes stay shared.

    With ``hash_ids``: one block of 512 tokens per id (the last one cut to fit), the same
    text for the same id wherever it appears; tokens beyond the blocks are the row's own.
    With a ``prefix_id``: the id's word stream, cut to the row's length. Else the row's own.
    """
    n = row.input_tokens
    if row.hash_ids:
        parts, left = [], n
        for h in row.hash_ids:
            if left <= 0:
                break
            size = min(MOONCAKE_BLOCK_TOKENS, left)
            # The same id, the same words: a shorter last block is the full one's start.
            parts.append(_block(f"{seed}:block:{h}", size))
            left -= size
        if left > 0:
            parts.append(word_prompt(left, f"{seed}:row:{row.line}"))
        return "".join(parts)
    if row.prefix_id is not None:
        return word_prompt(n, f"{seed}:prefix:{row.prefix_id}")
    return word_prompt(n, f"{seed}:row:{row.line}")


def plan_trace(
    suite: LatencySuite, provider: str, phase: PhaseSpec, load: LoadConfig
) -> Iterator[RequestSpec]:
    """One request per traced row in the window; its send offset goes in ``meta``."""
    assert load.trace is not None
    rows = window(
        read_trace(load.trace, load.trace_format), load.start_s, load.duration_s, load.speed
    )
    extra: dict[str, Any] = {"extra_body": {"ignore_eos": True}} if suite.ignore_eos else {}
    for i, (offset, row) in enumerate(rows):
        messages = [{"role": "user", "content": prompt_for(row, load.seed)}]
        if suite.system:
            messages.insert(0, {"role": "system", "content": suite.system})
        yield RequestSpec(
            suite=suite.name,
            suite_kind=suite.kind,
            case_id=f"trace-{row.line}",
            repeat=0,
            provider=provider,
            messages=messages,
            max_tokens=row.output_tokens,
            extra=extra,
            load_level=phase.label,
            warmup=i < phase.warmup,
            meta={"arrival_s": offset, "trace_input_tokens": row.input_tokens},
        )
