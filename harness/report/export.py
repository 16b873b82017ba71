"""Write a :class:`Report` to a file whose extension picks the format.

:func:`export` dispatches on the extension through a registry filled by
:func:`register`:

========  ==================================================================================
``.csv``  the first table to ``path``; every other table beside it as ``<stem>-<table>.csv``
          (table names reduced to letters, digits, ``-``, ``_`` and ``.``). Lists and dicts
          as JSON text, timestamps in ISO 8601 with their offset, missing values empty. A
          :class:`RowStream` is written a whole Arrow batch at a time
          (:mod:`harness.report.streamed`, which says how its text differs, deliberately).
``.json`` one object: ``title``, ``run_ids``, ``generated_at``, ``notes`` and ``tables``
          (name → list of records). ISO 8601 timestamps, NaN/NA/None as ``null``.
``.md``   GitHub markdown: title, notes, each table as a pipe table; numbers formatted for
          reading, missing values ``-``, unpriced cost ``no price``. Markdown and HTML
          characters in cells are escaped.
``.xlsx`` one sheet per table (names made valid and unique) plus a ``notes`` sheet with
          title, run ids and notes; bold, frozen, filterable header row; number formats;
          timestamps as naive UTC; lists as JSON text. Needs ``openpyxl``. A
          :class:`RowStream`'s rows go into its sheet's XML while the workbook is saved
          (:func:`save_workbook`), in constant memory; past 1,048,575 rows a table
          continues on ``<sheet> (2)``, ... and the notes sheet and stderr say so.
``.html`` one self-contained page (inline CSS and SVG, no script, a Content-Security-Policy
          that forbids any fetch): title, notes, charts (:mod:`harness.report.charts`) and
          the tables, simulated providers marked.
========  ==================================================================================

Markdown and HTML show at most :data:`MAX_DOCUMENT_ROWS` rows per table and cut long cells
(they say so); CSV, JSON and XLSX hold everything.

Columns are typed by name and dtype (:func:`column_kind`): ``*_ms`` milliseconds,
``*_rate`` fractions shown as percentages, ``cost_usd``/``*_usd``/``usd_*`` dollars,
``*_s`` seconds, quality metrics (``exact_match``, ``f1``, or any metric with
``_ci_low``/``_ci_high`` bounds that is not a latency, speed or cost) as scores in [0, 1],
counts (``requests``, ``*_tokens``, ...) as integers, p-values (``p_value``, ...) with 3
significant digits, ``goodput`` and ``change_rel`` as percentages. Dollars below $1 show 4
significant digits, trailing zeros dropped ($0.0167). A ``*_ci_low``/``*_ci_high`` bound is
formatted like its metric. The same formatting (:func:`format_value`) is used by the terminal
tables (:mod:`harness.report.text`); CSV, JSON and XLSX keep raw numbers. Provider labels
ending in ``" (simulated)"`` or rows with a true ``simulated`` column are marked in HTML.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import math
import re
import sys
import zipfile
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from harness.errors import HarnessError
from harness.report.charts import (
    SIMULATED_SUFFIX,
    is_quality_metric,
    quality_column,
    report_charts,
)
from harness.secrets import redact_frame, scrub
from harness.store.files import atomic_write

MAX_DOCUMENT_ROWS = 500
"""Rows per table shown in Markdown and HTML; the data formats hold every row."""
MAX_DOCUMENT_CELL = 200
"""Characters per cell shown in Markdown and HTML tables."""
EXCEL_MAX_CELL = 32_767
EXCEL_WIDTH_ROWS = 1000
"""Column widths of a sheet are sized from its header and first rows."""

Kind = Literal[
    "int",
    "ms",
    "seconds",
    "rate",
    "usd",
    "score",
    "p",
    "float",
    "bool",
    "timestamp",
    "list",
    "text",
]
NUMERIC_KINDS = frozenset({"int", "ms", "seconds", "rate", "usd", "score", "p", "float"})
SHARE_NAMES = frozenset({"goodput", "change_rel"})
"""Fractions in [0, 1] (or relative changes) whose name does not end in ``_rate``."""
P_VALUE_NAMES = frozenset({"p_value", "p_bootstrap", "p_mcnemar", "p_exact"})
INTEGER_NAMES = frozenset(
    {
        "requests",
        "errors",
        "retried",
        "failed_attempts",
        "n_a",
        "n_b",
        "request_index",
        "repeat",
        "http_status",
        "text_chunks",
        "max_tokens",
        "n",
        "count",
    }
)
EXCEL_FORMATS: dict[str, str] = {
    "int": "0",
    "ms": "0.0",
    "seconds": "0.000",
    "rate": "0.0%",
    "usd": "$0.0000",  # "$0.000000" for a column of sub-cent values (per-request costs)
    "score": "0.000",
    "float": "0.00",
    "timestamp": "yyyy-mm-dd hh:mm:ss.000",
}


class ExportError(HarnessError):
    """A report cannot be exported: unknown format, nothing to write, or a missing writer."""


@dataclass
class Report:
    """What every exporter writes: named tables (the first is the main one) and context.

    ``tables`` keeps its order: typically ``leaderboard``, ``summary``, one per suite, and
    ``requests`` (the per-request rows as read from Parquet: list columns, tz-aware
    timestamps, nullable integers and None/NaN are all expected; a :class:`RowStream`
    when there are too many to hold).
    """

    title: str
    run_ids: list[str]
    tables: dict[str, pd.DataFrame | RowStream]
    notes: list[str] = field(default_factory=list)
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # A decision-first report (harness.report.document) sets these; without ``sections``
    # every format writes its tables in order, as above.
    sections: dict[str, str] = field(default_factory=dict)
    """Table name → ``answer``, ``suite`` or ``raw``: where the table goes."""
    headers: dict[str, str] = field(default_factory=dict)
    """Column name → the header people read (``TTFT p50 (ms)``); the name keeps the format."""
    answer: list[str] = field(default_factory=list)
    """The decision in sentences: the best provider, the Pareto front, the gate's verdict."""
    warnings: list[str] = field(default_factory=list)
    """Deprecations and tag warnings (region, residency, open weights)."""
    charts: list[tuple[str, str]] | None = None
    """(name, SVG) of each chart; None: drawn from the first comparison table."""
    full_data: dict[str, str] = field(default_factory=dict)
    """Table name → where all of its rows are, said by a document that shows only some."""


@dataclass
class RowStream:
    """A table too long to hold in memory (a run's per-request rows): ``batches()`` reads
    it anew, a DataFrame at a time, already redacted; ``rows`` says how long it is.

    ``tables``, when given, reads the same rows as Arrow tables (also redacted), which
    CSV and XLSX write a whole batch at a time (:mod:`harness.report.streamed`); without
    it they convert each DataFrame batch. CSV and XLSX write it batch by batch, in
    constant memory; Markdown and HTML read only its first rows (they show
    :data:`MAX_DOCUMENT_ROWS`); JSON, which builds the whole document, reads it whole.
    """

    batches: Callable[[], Iterator[pd.DataFrame]]
    rows: int
    tables: Callable[[], Iterator[pa.Table]] | None = None
    first: Callable[[int], Iterator[pa.Table]] | None = None
    """The first rows anew (redacted Arrow tables), at least ``n`` of them unless the
    stream is shorter, read in small batches: what :meth:`head` reads when given."""
    _heads: dict[int, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of_tables(
        cls,
        tables: Callable[[], Iterator[pa.Table]],
        rows: int,
        first: Callable[[int], Iterator[pa.Table]] | None = None,
    ) -> RowStream:
        """A stream of redacted Arrow tables (``batches()`` converts each to pandas);
        ``first(n)``, when given, reads the first ``n`` rows the same, in fewer reads."""

        def batches() -> Iterator[pd.DataFrame]:
            for table in tables():
                frame: pd.DataFrame = table.to_pandas()
                yield frame

        return cls(batches, rows, tables, first)

    def arrow(self) -> Iterator[pa.Table]:
        """The rows anew, an Arrow table at a time."""
        if self.tables is not None:
            yield from self.tables()
            return
        for frame in self.batches():
            yield pa.Table.from_pandas(frame, preserve_index=False)

    def __len__(self) -> int:
        return self.rows

    def head(self, n: int) -> pd.DataFrame:
        """The first ``n`` rows (reading only as many batches as that takes), read once:
        a document asks for them more than once (the simulated-row legend, the table)."""
        if n not in self._heads:
            self._heads[n] = self._head(n)
        return self._heads[n]

    def _head(self, n: int) -> pd.DataFrame:
        first = self.first
        read = self.tables if first is None else lambda: first(n)
        if read is not None:
            parts: list[pa.Table] = []
            got = 0
            for table in read():
                parts.append(table.slice(0, n - got))
                got += parts[-1].num_rows
                if got >= n:
                    break
            shown: pd.DataFrame = pa.concat_tables(parts).to_pandas()
            return shown
        taken: list[pd.DataFrame] = []
        got = 0
        for batch in self.batches():
            taken.append(batch.iloc[: n - got])
            got += len(taken[-1])
            if got >= n:
                break
        return pd.concat(taken, ignore_index=True) if len(taken) > 1 else taken[0]

    def frame(self) -> pd.DataFrame:
        """Every row as one DataFrame."""
        return pd.concat(list(self.batches()), ignore_index=True)


Table = pd.DataFrame | RowStream


def _whole(table: Table) -> pd.DataFrame:
    return table.frame() if isinstance(table, RowStream) else table


def _shown(table: Table, max_rows: int) -> tuple[pd.DataFrame, list[Kind]]:
    """The rows a document shows and the columns' kinds (a stream's from what is shown)."""
    if isinstance(table, RowStream):
        head = table.head(max_rows)
        return head, _kinds(head)
    return table.head(max_rows), _kinds(table)


Exporter = Callable[[Report, Path], Path]
_EXPORTERS: dict[str, Exporter] = {}


def register(*extensions: str) -> Callable[[Exporter], Exporter]:
    """Register an exporter for one or more extensions (``".csv"``), case-insensitive."""

    def decorate(function: Exporter) -> Exporter:
        for extension in extensions:
            if not extension.startswith("."):
                raise ValueError(f"extension must start with '.': {extension!r}")
            _EXPORTERS[extension.lower()] = function
        return function

    return decorate


def formats() -> list[str]:
    """The registered extensions, sorted."""
    return sorted(_EXPORTERS)


def export(report: Report, path: Path) -> Path:
    """Write ``report`` to ``path`` in the format its extension names; return the path.

    Missing parent directories are created. Files are replaced atomically.
    """
    path = Path(path)
    extension = path.suffix.lower()
    exporter = _EXPORTERS.get(extension)
    if exporter is None:
        raise ExportError(
            f"{path}: unknown export format {extension or '(no extension)'!r}; "
            f"known: {', '.join(formats())}"
        )
    if not report.tables:
        raise ExportError(f"{path}: the report has no tables to export")
    path.parent.mkdir(parents=True, exist_ok=True)
    return exporter(redact_report(report), path)


def redact_report(report: Report) -> Report:
    """The report with key-shaped text removed from its cells, notes and title.

    Every format goes through this: a report is read from rows and a manifest,
    and whatever slipped into them must not reach a file people pass around.
    """
    return dataclasses.replace(
        report,
        title=scrub(report.title),
        notes=[scrub(note) for note in report.notes],
        tables={
            # A stream's batches are redacted as they are read (harness.store.dataset).
            name: table if isinstance(table, RowStream) else redact_frame(table)
            for name, table in report.tables.items()
        },
        answer=[scrub(line) for line in report.answer],
        warnings=[scrub(line) for line in report.warnings],
        charts=None
        if report.charts is None
        else [(name, scrub(svg)) for name, svg in report.charts],
    )


# --------------------------------------------------------------------------- values


def is_missing(value: object) -> bool:
    """None, NaN, NA and NaT are missing; lists and arrays never are."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    return isinstance(value, np.datetime64) and bool(np.isnat(value))


def _is_listlike(value: object) -> bool:
    return isinstance(value, list | tuple | dict | np.ndarray)


def column_kind(name: str, values: pd.Series, columns: Collection[str] = ()) -> Kind:
    """How a column is formatted, from its name and dtype (see the module docstring);
    ``columns`` (the table's) tell metrics with a confidence interval."""
    dtype = values.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        named = name_kind(name, columns)
        if named is not None:
            return named
        return "int" if pd.api.types.is_integer_dtype(dtype) else "float"
    if isinstance(dtype, pd.StringDtype):
        return "text"  # every value is text or missing (what the loop below would find)
    present = [v for v in values if not is_missing(v)]
    if present and any(_is_listlike(v) for v in present):
        return "list"
    if present and all(isinstance(v, bool | np.bool_) for v in present):
        return "bool"
    if present and all(isinstance(v, datetime) for v in present):
        return "timestamp"
    return "text"


def name_kind(name: str, columns: Collection[str] = ()) -> Kind | None:
    """The kind a numeric column's (or a metric's) name implies, None if it implies none.

    ``diff`` rows name their metric in a cell, so their values are formatted by this too.
    """
    # A confidence bound is formatted like its metric: ttft_p50_ms_ci_low is in ms.
    lowered = re.sub(r"_ci_(low|high)$", "", name.lower())
    if lowered == "cost_usd" or lowered.endswith("_usd") or lowered.startswith("usd_"):
        return "usd"
    if lowered.endswith("_rate") or lowered in SHARE_NAMES:
        return "rate"
    if lowered in P_VALUE_NAMES:
        return "p"
    if lowered.endswith("_ms"):
        return "ms"
    if lowered.endswith("_s"):
        return "seconds"
    if is_quality_metric(lowered, columns):
        return "score"
    if lowered in INTEGER_NAMES or lowered.endswith(("_tokens", "_count")):
        return "int"
    return None


def _kinds(table: pd.DataFrame) -> list[Kind]:
    columns = {str(c).lower() for c in table.columns}  # looked up once per column
    return [column_kind(str(name), table[name], columns) for name in table.columns]


def _plain(value: Any) -> Any:
    """A JSON-ready Python value: lists for arrays, None for missing, ISO for timestamps."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if is_missing(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        # One layout for a whole column (readers infer the format from the first value).
        return value.isoformat(timespec="microseconds")
    if isinstance(value, pd.Timedelta):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _json_text(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"))


def _typed(value: Any, kind: Kind) -> Any:
    """The Python value of a cell for the data formats: int for counts, None if missing."""
    if kind == "list":
        return None if is_missing(value) else _plain(value)
    value = _plain(value)
    if value is None:
        return None
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _usd_text(value: float) -> str:
    """Dollars: cents from $1 up; below, 4 significant digits with trailing zeros
    dropped down to cents ($0.0167, $0.04368, $0.50, $0.000012)."""
    magnitude = abs(value)
    sign = "-" if value < 0 else ""  # a cost change: -$0.0012, not $-0.0012
    if magnitude >= 1 or magnitude == 0:
        return f"{sign}${magnitude:,.2f}"
    decimals = min(10, max(4, 3 - math.floor(math.log10(magnitude))))
    whole, _, cents = f"{magnitude:.{decimals}f}".rstrip("0").partition(".")
    return f"{sign}${whole}.{cents.ljust(2, '0')}"


def format_value(value: Any, kind: Kind) -> str | None:
    """A cell as people read it (Markdown, HTML); None when the value is missing."""
    if kind == "list":
        return None if is_missing(value) else _json_text(value)
    if is_missing(value):
        return None
    try:
        if kind == "int":
            return f"{int(value):,}"
        if kind == "ms":
            return f"{float(value):,.1f}"
        if kind == "seconds":
            return f"{float(value):.3f}"
        if kind == "rate":
            return f"{float(value):.1%}"
        if kind == "usd":
            return _usd_text(float(value))
        if kind == "score":
            return f"{float(value):.3f}"
        if kind == "p":
            return f"{float(value):.3g}"
        if kind == "float":
            number = float(value)
            return f"{number:,.1f}" if abs(number) >= 10 else f"{number:.3g}"
        if kind == "bool":
            return "yes" if bool(value) else "no"
        if kind == "timestamp":
            stamp = pd.Timestamp(value)
            return str(stamp.isoformat(sep=" ", timespec="milliseconds"))
    except (TypeError, ValueError, OverflowError):
        pass
    if _is_listlike(value):
        return _json_text(value)
    return str(value)


_FAST_FORMATS: dict[str, Callable[[Any], str]] = {
    # format_value's branch of each kind, for a float or an int (bools excluded)
    "int": lambda v: f"{int(v):,}",
    "ms": lambda v: f"{float(v):,.1f}",
    "seconds": lambda v: f"{float(v):.3f}",
    "rate": lambda v: f"{float(v):.1%}",
    "usd": lambda v: _usd_text(float(v)),
    "score": lambda v: f"{float(v):.3f}",
    "p": lambda v: f"{float(v):.3g}",
    "float": lambda v: f"{float(v):,.1f}" if abs(float(v)) >= 10 else f"{float(v):.3g}",
}


def _json_array(value: np.ndarray) -> str | None:
    """_json_text of a numeric array without NaN or infinity (its values as they are),
    None for any other array."""
    if value.dtype.kind in "iu" or (value.dtype.kind == "f" and bool(np.isfinite(value).all())):
        return json.dumps(value.tolist(), ensure_ascii=False, separators=(",", ":"))
    return None


def format_values(values: Iterable[Any], kind: Kind) -> list[str | None]:
    """``[format_value(v, kind) for v in values]``, the same strings, at a fraction of the
    cost: a column's common cells (floats, ints, text, booleans, numeric arrays) take
    their kind's branch directly; every other value goes through :func:`format_value`."""
    fast = _FAST_FORMATS.get(kind)
    out: list[str | None] = []
    add = out.append
    for value in values:
        kind_of = type(value)
        if kind_of is float:
            if value != value:  # NaN: missing
                add(None)
                continue
            if fast is not None and value - value == 0.0:  # finite
                add(fast(value))
                continue
        elif kind_of is int:
            if fast is not None:
                try:
                    add(fast(value))
                    continue
                except (TypeError, ValueError, OverflowError):
                    pass
        elif kind_of is str:
            if kind == "text":
                add(value)
                continue
        elif kind_of is bool:
            if kind == "bool":
                add("yes" if value else "no")
                continue
        elif value is None:
            add(None)
            continue
        elif kind_of is np.ndarray and kind == "list":
            text = _json_array(value)
            if text is not None:
                add(text)
                continue
        add(format_value(value, kind))
    return out


def _missing_text(kind: Kind, row: Any) -> str:
    """``no price`` for an unpriced cost (of a successful row, when rows have a status)."""
    if kind == "usd" and ("status" not in row.index or row["status"] == "ok"):
        return "no price"
    return "-"


def _cut(text: str, limit: int = MAX_DOCUMENT_CELL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_simulated_row(row: Mapping[str, Any]) -> bool:
    provider = row.get("provider")
    if isinstance(provider, str) and provider.endswith(SIMULATED_SUFFIX):
        return True
    flag = row.get("simulated")
    return isinstance(flag, bool | np.bool_) and bool(flag)


class _Shown:
    """The shown rows of a table column by column: each column's values (as objects) and
    its cells' text (:func:`format_values`); what a row says of itself (its status, whether
    it is simulated) is read once per table. A name that two columns share reads as the
    last of them, as a row's ``row[name]`` does."""

    def __init__(self, frame: pd.DataFrame, kinds: Sequence[Kind]):
        self.names = [str(c) for c in frame.columns]
        self.kinds = list(kinds)
        self.values = [frame.iloc[:, i].to_numpy(dtype=object) for i in range(frame.shape[1])]
        self.texts = [format_values(v, k) for v, k in zip(self.values, self.kinds, strict=True)]
        self.rows = len(frame) if self.names else 0
        by_name = dict(zip(self.names, self.values, strict=True))
        self.status = by_name.get("status")
        provider = by_name.get("provider")
        flag = by_name.get("simulated")
        self.simulated = [
            _is_simulated_row(
                {
                    "provider": None if provider is None else provider[i],
                    "simulated": None if flag is None else flag[i],
                }
            )
            for i in range(self.rows)
        ]

    def missing(self, kind: Kind) -> list[str]:
        """Each row's text for a missing cell of this kind (:func:`_missing_text`)."""
        if kind != "usd":
            return ["-"] * self.rows
        if self.status is None:
            return ["no price"] * self.rows
        return ["no price" if status == "ok" else "-" for status in self.status]


def _has_simulated(report: Report) -> bool:
    for whole in report.tables.values():
        table = whole.head(MAX_DOCUMENT_ROWS) if isinstance(whole, RowStream) else whole
        flags = table.get("simulated", ())
        if any(isinstance(v, bool | np.bool_) and v for v in flags):
            return True
        if (
            "provider" in table
            and table["provider"].astype(str).str.endswith(SIMULATED_SUFFIX).any()
        ):
            return True
    return False


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("._") or "table"


def _unique(names: Iterable[str], limit: int | None = None) -> list[str]:
    """Make names unique (case-insensitively) with ``~2``, ``~3``, ... within ``limit``."""
    seen: set[str] = set()
    out = []
    for name in names:
        candidate = name[:limit] if limit else name
        n = 2
        while candidate.lower() in seen:
            suffix = f"~{n}"
            candidate = (name[: limit - len(suffix)] if limit else name) + suffix
            n += 1
        seen.add(candidate.lower())
        out.append(candidate)
    return out


def _generated(report: Report) -> str:
    stamp = report.generated_at
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC)
        return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


# --------------------------------------------------------------------------- CSV / JSON


def _csv_bytes(table: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    _write_csv(buffer, table)
    return buffer.getvalue()


def _write_csv(out: Any, table: Table) -> None:
    """The table as CSV into a binary file: a DataFrame cell by cell, a stream a whole
    Arrow batch at a time (:func:`harness.report.streamed.csv_rows`)."""
    if isinstance(table, RowStream):
        _write_csv_stream(out, table)
        return
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    writer = csv.writer(text, lineterminator="\n")
    kinds: list[Kind] | None = None
    for batch in (table,):  # a DataFrame is one batch
        if kinds is None:
            kinds = _kinds(batch)
            writer.writerow([str(c) for c in batch.columns])
        for row in batch.itertuples(index=False, name=None):
            cells = []
            for value, kind in zip(row, kinds, strict=True):
                if kind == "list" or _is_listlike(value):
                    cells.append("" if is_missing(value) else _json_text(value))
                    continue
                plain = _typed(value, kind)
                if plain is None:
                    cells.append("")
                elif isinstance(plain, float):
                    cells.append(repr(plain))
                else:
                    cells.append(str(plain))
            writer.writerow(cells)
    text.flush()
    text.detach()  # the caller closes (and fsyncs) the file


def _write_csv_stream(out: Any, table: RowStream) -> None:
    """Header from the first batch's columns (a stream always yields one, maybe empty),
    then each batch's rows as one write: memory is one batch's."""
    from harness.report.streamed import arrow_kinds, csv_header, csv_rows

    kinds: list[Kind] | None = None
    for batch in table.arrow():
        if kinds is None:
            kinds = arrow_kinds(batch.schema)
            out.write(csv_header(batch.schema.names))
        out.write(csv_rows(batch, kinds))


@register(".csv")
def export_csv(report: Report, path: Path) -> Path:
    """The first table to ``path``; each other table to ``<stem>-<table>.csv`` beside it.

    Returns ``path``. Lists are JSON text, timestamps ISO 8601 with their UTC offset.
    """
    names = list(report.tables)
    slugs = _unique([_slug(name) for name in names[1:]])
    for name, slug in zip(names[1:], slugs, strict=True):
        table = report.tables[name]
        atomic_write(path.with_name(f"{path.stem}-{slug}.csv"), lambda f, t=table: _write_csv(f, t))
    atomic_write(path, lambda f: _write_csv(f, report.tables[names[0]]))
    return path


def report_dict(report: Report) -> dict[str, Any]:
    """The report as JSON-ready Python: tables as lists of records."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for name, whole in report.tables.items():
        table = _whole(whole)
        kinds = _kinds(table)
        columns = [str(c) for c in table.columns]
        tables[name] = [
            {c: _typed(v, k) for c, v, k in zip(columns, row, kinds, strict=True)}
            for row in table.itertuples(index=False, name=None)
        ]
    return {
        "title": report.title,
        "run_ids": list(report.run_ids),
        "generated_at": report.generated_at.isoformat(),
        "notes": list(report.notes),
        "tables": tables,
    }


@register(".json")
def export_json(report: Report, path: Path) -> Path:
    """All tables as records under ``tables``, with title, run ids, time and notes."""
    data = json.dumps(report_dict(report), indent=1, ensure_ascii=False, allow_nan=False)
    atomic_write(path, lambda f: f.write(data.encode("utf-8") + b"\n"))
    return path


# --------------------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def md_escape(text: str) -> str:
    """Escape Markdown and HTML in one line of text: no tag, link or table break survives."""
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return re.sub(r"\r\n|\r|\n", "<br>", text)


def _md_cell(text: str) -> str:
    # Inside a table cell intraword underscores are harmless and escaping them is noisy.
    return md_escape(_cut(text)).replace("\\_", "_")


def _md_escaped(text: str, seen: dict[str, str]) -> str:
    seen[text] = _md_cell(text)
    return seen[text]


def markdown_table(
    table: Table,
    max_rows: int = MAX_DOCUMENT_ROWS,
    headers_shown: dict[str, str] | None = None,
) -> str:
    """One table as a GitHub pipe table (numbers right-aligned), with a cut-off note."""
    from tabulate import tabulate

    shown, kinds = _shown(table, max_rows)
    # Column by column (as html_table), each distinct text escaped once.
    columns = _Shown(shown, kinds)
    cells = []
    for texts, kind in zip(columns.texts, columns.kinds, strict=True):
        escaped: dict[str, str] = {}
        missing = columns.missing(kind) if None in texts else []
        cells.append(
            [
                missing[i] if text is None else escaped.get(text) or _md_escaped(text, escaped)
                for i, text in enumerate(texts)
            ]
        )
    rows = [list(row) for row in zip(*cells, strict=True)]
    headers = [_md_cell((headers_shown or {}).get(str(c), str(c))) for c in shown.columns]
    align = ["right" if k in NUMERIC_KINDS else "left" for k in kinds]
    if not headers:
        return "_(no columns)_"
    text = str(
        tabulate(
            rows,
            headers=headers,
            tablefmt="pipe",
            colalign=align,
            disable_numparse=True,
        )
    )
    if len(table) > max_rows:
        text += f"\n\n_Showing {max_rows:,} of {len(table):,} rows; CSV, JSON and XLSX have all._"
    elif len(table) == 0:
        text += "\n\n_(no rows)_"
    return text


@register(".md", ".markdown")
def export_markdown(report: Report, path: Path) -> Path:
    """Title, run ids, notes, then every table under its own heading."""
    if report.sections:
        from harness.report.document import export_markdown_document

        return export_markdown_document(report, path)
    lines = [f"# {md_escape(report.title)}", ""]
    runs = ", ".join(md_escape(r) for r in report.run_ids) or "-"
    lines += [f"Generated {_generated(report)} · runs: {runs}", ""]
    if report.notes:
        lines += [f"- {md_escape(note)}" for note in report.notes] + [""]
    for name, table in report.tables.items():
        lines += [f"## {md_escape(name)}", "", markdown_table(table), ""]
    text = "\n".join(lines)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return path


# --------------------------------------------------------------------------- XLSX

_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def sheet_names(names: Sequence[str]) -> list[str]:
    """Valid, unique Excel sheet names: no ``[]:*?/\\``, at most 31 characters."""
    cleaned = []
    for name in names:
        clean = _SHEET_BAD.sub("_", name).strip("'").strip() or "table"
        if clean.lower() == "history":  # reserved by Excel
            clean = "history_"
        cleaned.append(clean)
    return _unique(cleaned, limit=31)


def _excel_value(value: Any, kind: Kind) -> Any:
    """A value openpyxl can store and Excel can show."""
    if kind == "list" or _is_listlike(value):
        text = None if is_missing(value) else _json_text(value)
        return None if text is None else _excel_text(text)
    if is_missing(value):
        return None
    if kind == "timestamp" or isinstance(value, datetime | np.datetime64):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return stamp.to_pydatetime()
    value = _plain(value)
    if value is None:
        return None
    if isinstance(value, str):
        return _excel_text(value)
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _excel_text(text: str) -> str:
    from openpyxl.cell.cell import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        ILLEGAL_CHARACTERS_RE,
    )

    text = ILLEGAL_CHARACTERS_RE.sub("\N{REPLACEMENT CHARACTER}", text)
    if len(text) > EXCEL_MAX_CELL:
        text = text[: EXCEL_MAX_CELL - 1] + "…"
    return str(text)


def _excel_format(values: pd.Series, kind: Kind) -> str:
    """The number format of a column (empty for text); more decimals for sub-cent costs."""
    if kind == "usd":
        numbers = pd.to_numeric(values, errors="coerce").abs()
        nonzero = numbers[numbers > 0]
        if len(nonzero) and float(nonzero.min()) < 0.01:
            return "$0.000000"
    return EXCEL_FORMATS.get(kind, "")


def _write_sheet(sheet: Any, table: pd.DataFrame, headers: dict[str, str] | None = None) -> None:
    kinds = _kinds(table)
    formats = [
        _excel_format(table[column], kind)
        for column, kind in zip(table.columns, kinds, strict=True)
    ]
    widths = _write_header(sheet, [str(c) for c in table.columns], headers)
    for r, row in enumerate(table.itertuples(index=False, name=None), start=2):
        for c, (value, kind) in enumerate(zip(row, kinds, strict=True), start=1):
            stored = _excel_value(value, kind)
            if stored is None:
                continue
            cell = sheet.cell(row=r, column=c, value=stored)
            if isinstance(stored, str):
                cell.data_type = "s"  # "=..." is text here, never a formula
            elif formats[c - 1]:
                cell.number_format = formats[c - 1]
            if r <= EXCEL_WIDTH_ROWS + 1:
                widths[c - 1] = max(
                    widths[c - 1], _shown_width(value, stored, kind, formats[c - 1])
                )
    _finish_sheet(sheet, widths, len(table.columns), len(table))


def _write_header(sheet: Any, names: Sequence[str], headers: dict[str, str] | None) -> list[int]:
    """Row 1: the bold headers; returns the columns' widths so far."""
    from openpyxl.styles import Font  # type: ignore[import-untyped, import-not-found, unused-ignore]

    bold = Font(bold=True)
    widths = []
    titles = headers or {}
    for c, name in enumerate(names, start=1):
        cell = sheet.cell(row=1, column=c, value=_excel_text(titles.get(name, name)))
        cell.font = bold
        cell.data_type = "s"
        widths.append(len(titles.get(name, name)) + 4)  # room for the filter button
    return widths


def _shown_width(value: Any, stored: Any, kind: Kind, number_format: str) -> int:
    shown = format_value(value, kind) or ""
    if kind == "usd":
        decimals = number_format.count("0") - 1
        shown = f"${float(stored):,.{decimals}f}"
    return len(shown) + 2


def _finish_sheet(sheet: Any, widths: Sequence[int], columns: int, rows: int) -> None:
    """Widths, frozen and filterable header, print setup; ``rows`` below the header."""
    from openpyxl.utils import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        get_column_letter,
    )

    for c, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(c)].width = min(max(width, 8), 60)
    sheet.freeze_panes = "A2"
    last = get_column_letter(max(columns, 1))
    sheet.auto_filter.ref = f"A1:{last}{rows + 1}"
    # Printed: landscape, every column on the page's width, the header row on each page.
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = "1:1"


EXCEL_MAX_ROWS = 1_048_576
"""Rows of an Excel (and LibreOffice) sheet, its header row included."""
_STREAMED = "_harness_streamed"
"""Attribute of a sheet whose rows :func:`save_workbook` writes from a stream."""


class _Cursor:
    """A stream's Arrow batches handed out ``n`` rows at a time to the sheets that share it."""

    def __init__(self, tables: Iterator[pa.Table]) -> None:
        self._tables = tables
        self._rest: pa.Table | None = None

    def take(self, n: int) -> Iterator[pa.Table]:
        while n > 0:
            if self._rest is None or self._rest.num_rows == 0:
                self._rest = next(self._tables, None)
                if self._rest is None:
                    return
            piece = self._rest.slice(0, n)
            self._rest = self._rest.slice(piece.num_rows)
            n -= piece.num_rows
            yield piece

    def left(self) -> int:
        """How many rows no sheet took (reads them)."""
        rest = int(self._rest.num_rows) if self._rest is not None else 0
        return rest + sum(int(t.num_rows) for t in self._tables)


@dataclass
class _Streamed:
    """What :func:`save_workbook` needs to write one sheet's rows."""

    cursor: _Cursor
    limit: int
    kinds: list[Kind]
    letters: list[str]
    styles: list[int | None]
    last: bool
    table: str
    zip64: bool
    """The sheet's XML may pass 2 GB (zip64 records, needed from 4 GB, only then)."""


def write_table_sheets(
    book: Any, sheet: Any, name: str, table: Table, headers: dict[str, str] | None = None
) -> tuple[list[tuple[str, str, int]], list[str]]:
    """Write ``table`` on ``sheet`` (and, past Excel's 1,048,576 rows, on sheets inserted
    after it); return the (table, sheet, rows) of each sheet and notes for the workbook.

    A DataFrame that fits is written cell by cell. A stream, or a DataFrame too long for
    one sheet, gets its header, widths and formats now and its rows when the workbook is
    saved (:func:`save_workbook`), a whole Arrow batch at a time, in constant memory.
    Rows beyond one sheet continue on ``<sheet> (2)``, ``<sheet> (3)``, ... each with
    its header and filter: every row stays in the workbook, as the Markdown and HTML
    reports promise, and the notes say where.
    """
    if isinstance(table, pd.DataFrame):
        if len(table) < EXCEL_MAX_ROWS:
            _write_sheet(sheet, table, headers)
            return [(name, sheet.title, len(table))], []
        frame = table
        table = RowStream(lambda: iter([frame]), len(frame))
    return _stream_sheets(book, sheet, name, table, headers)


def _stream_sheets(
    book: Any, sheet: Any, name: str, table: RowStream, headers: dict[str, str] | None
) -> tuple[list[tuple[str, str, int]], list[str]]:
    from openpyxl.cell.cell import Cell  # type: ignore[import-untyped, import-not-found, unused-ignore]
    from openpyxl.utils import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        get_column_letter,
    )

    from harness.report.streamed import arrow_kinds

    tables = table.arrow()
    first = [next(tables)]  # widths from the first rows, as for a DataFrame
    while sum(t.num_rows for t in first) < EXCEL_WIDTH_ROWS:
        more = next(tables, None)
        if more is None:
            break
        first.append(more)
    cursor = _Cursor(itertools.chain(first, tables))
    kinds = arrow_kinds(first[0].schema)
    names = [str(n) for n in first[0].schema.names]
    head = pa.concat_tables(first).slice(0, EXCEL_WIDTH_ROWS).to_pandas()
    # Sub-cent costs get 6 decimals, judged on the first rows (a DataFrame: on all).
    formats = [
        _excel_format(head[name], kind) if kind == "usd" else EXCEL_FORMATS.get(kind, "")
        for name, kind in zip(names, kinds, strict=True)
    ]
    styles: list[int | None] = []
    for number_format in formats:
        if not number_format:
            styles.append(None)
            continue
        probe = Cell(sheet)
        probe.number_format = number_format
        styles.append(int(probe.style_id))  # the format's index in the workbook's styles
    letters = [get_column_letter(c) for c in range(1, len(names) + 1)]
    widths = _write_header(sheet, names, headers)
    for column, kind, number_format, i in zip(
        names, kinds, formats, range(len(names)), strict=True
    ):
        for value in head[column]:
            stored = _excel_value(value, kind)
            if stored is not None:
                widths[i] = max(widths[i], _shown_width(value, stored, kind, number_format))
    per_sheet = EXCEL_MAX_ROWS - 1
    count = max(1, -(-table.rows // per_sheet))
    listing, notes, sheets = [], [], [sheet]
    taken = {s.lower() for s in book.sheetnames}
    for k in range(2, count + 1):
        suffix = f" ({k})"
        title = sheet.title[: 31 - len(suffix)] + suffix
        while title.lower() in taken:
            title = title[: -len(suffix) - 1] + suffix
        taken.add(title.lower())
        extra = book.create_sheet(title=title, index=book.index(sheets[-1]) + 1)
        _write_header(extra, names, headers)
        sheets.append(extra)
    # XML of a row: ~40 bytes a cell plus its text; the estimate errs high (2 GB of 4).
    sample = sum(t.num_rows for t in first)
    row_bytes = len(names) * 40 + sum(t.nbytes for t in first) / max(sample, 1)
    big = 2**31 / row_bytes
    for k, target in enumerate(sheets):
        rows = min(per_sheet, max(0, table.rows - k * per_sheet))
        _finish_sheet(target, widths, len(names), rows)
        setattr(
            target,
            _STREAMED,
            _Streamed(
                cursor, per_sheet, kinds, letters, styles, k == count - 1, name, zip64=rows > big
            ),
        )
        listing.append((name, target.title, rows))
    if count > 1:
        notes.append(
            f"table {name!r} has {table.rows:,} rows, more than a sheet holds"
            f" ({per_sheet:,} below its header): continued on sheets"
            f" {', '.join(s.title for s in sheets[1:])}; the CSV export and the Parquet"
            " files hold it as one table"
        )
        print(f"warning: {notes[-1]}", file=sys.stderr)
    return listing, notes


def save_workbook(book: Any, path: Path) -> None:
    """Save ``book`` to ``path`` atomically, writing each streamed sheet's rows into its
    ``<sheetData>`` as the zip is written (openpyxl writes everything else)."""
    buffer = io.BytesIO()
    book.save(buffer)  # ws.path is set by saving
    streamed = {
        ws.path.lstrip("/"): (ws, getattr(ws, _STREAMED))
        for ws in book.worksheets
        if getattr(ws, _STREAMED, None) is not None
    }
    if not streamed:
        atomic_write(path, lambda f: f.write(buffer.getvalue()))
        return
    written: dict[str, int] = {}

    def write(f: Any) -> None:
        with (
            zipfile.ZipFile(buffer) as source,
            zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as out,
        ):
            deferred = []
            for info in source.infolist():
                if info.filename in streamed:
                    ws, part = streamed[info.filename]
                    written[ws.title] = _splice(out, info, source.read(info), part)
                elif info.filename == "xl/workbook.xml":
                    deferred.append(info)  # its filter ranges need the rows written
                else:
                    out.writestr(info, source.read(info))
            for info in deferred:
                text = source.read(info).decode("utf-8")
                for title, rows in written.items():
                    quoted = re.escape(quote_sheet(title))
                    last = f"\\g<1>{rows + 1}"
                    text = re.sub(rf"({quoted}!\$?A\$?1:\$?[A-Z]+\$?)(\d+)", last, text)
                out.writestr(info, text.encode("utf-8"))

    atomic_write(path, write)


def quote_sheet(title: str) -> str:
    """A sheet's name as formulas (and defined names) quote it."""
    from openpyxl.utils import quote_sheetname  # type: ignore[import-untyped, import-not-found, unused-ignore]

    return str(quote_sheetname(title))


def _splice(out: zipfile.ZipFile, info: zipfile.ZipInfo, data: bytes, part: _Streamed) -> int:
    """The sheet's XML with the stream's rows inside ``<sheetData>``; returns the rows."""
    from harness.report.streamed import xlsx_rows

    text = data.decode("utf-8")
    text = re.sub(r"<sheetData\s*/>", "<sheetData></sheetData>", text)
    at = text.index("</sheetData>")
    # The dimension openpyxl wrote counts the header only; it is optional, so it goes.
    head = re.sub(r"<dimension [^>]*/>", "", text[:at])
    target = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    target.compress_type = zipfile.ZIP_DEFLATED
    # Level 1: a million rows of XML deflate 3x faster than at the default 6, ~15 % larger.
    # (a private slot up to Python 3.12, the public compress_level from 3.13)
    setattr(target, "_compresslevel", 1)  # noqa: B010
    if hasattr(target, "compress_level"):
        setattr(target, "compress_level", 1)  # noqa: B010
    rows = 0
    with out.open(target, "w", force_zip64=part.zip64) as sheet:
        sheet.write(head.encode("utf-8"))
        for piece in part.cursor.take(part.limit):
            sheet.write(xlsx_rows(piece, part.kinds, part.letters, part.styles, 2 + rows))
            rows += piece.num_rows
        tail = re.sub(
            r'(<autoFilter ref="A1:[A-Z]+)\d+', lambda m: f"{m.group(1)}{rows + 1}", text[at:]
        )
        sheet.write(tail.encode("utf-8"))
    if part.last:
        left = part.cursor.left()
        if left:
            print(
                f"warning: table {part.table!r}: {left:,} rows arrived after the workbook was"
                " planned and are not in it (the CSV export has every row)",
                file=sys.stderr,
            )
    return rows


def _write_notes(sheet: Any, report: Report, sheets: Sequence[tuple[str, str, int]]) -> None:
    from openpyxl.styles import Font  # type: ignore[import-untyped, import-not-found, unused-ignore]

    sheet.cell(row=1, column=1, value=_excel_text(report.title)).font = Font(bold=True, size=14)
    generated = _excel_value(report.generated_at, "timestamp")
    rows: list[tuple[str, Any]] = [
        ("generated at (UTC)", generated),
        ("run ids", ", ".join(report.run_ids)),
    ]
    rows += [("note", note) for note in report.notes]
    rows += [
        ("formats", "times in ms or s as the column says; rates as %; costs in USD"),
        ("formats", "timestamps in UTC; lists as JSON text; an empty cost cell = no price"),
    ]
    rows += [
        ("sheet", f"{sheet_name}: table {name!r}, {n:,} rows") for name, sheet_name, n in sheets
    ]
    for r, (key, value) in enumerate(rows, start=3):
        sheet.cell(row=r, column=1, value=key).font = Font(bold=True)
        cell = sheet.cell(
            row=r, column=2, value=_excel_text(value) if isinstance(value, str) else value
        )
        if isinstance(value, datetime):
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
        if isinstance(value, str):
            cell.data_type = "s"
    sheet.column_dimensions["A"].width = 20
    sheet.column_dimensions["B"].width = 100


@register(".xlsx")
def export_xlsx(report: Report, path: Path) -> Path:
    """One sheet per table, then a ``notes`` sheet (title, run ids, notes, sheet list)."""
    try:
        from openpyxl import Workbook  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        raise ExportError(f"{path}: writing .xlsx needs openpyxl (pip install openpyxl)") from None
    if report.sections:
        from harness.report.document import export_xlsx_document

        return export_xlsx_document(report, path)
    names = list(report.tables)
    titles = sheet_names([*names, "notes"])
    book = Workbook()
    book.remove(book.active)
    listing: list[tuple[str, str, int]] = []
    notes: list[str] = []
    for name, title in zip(names, titles, strict=False):
        sheets, more = write_table_sheets(
            book, book.create_sheet(title=title), name, report.tables[name]
        )
        listing += sheets
        notes += more
    notes_sheet = book.create_sheet(title=titles[-1])
    _write_notes(notes_sheet, dataclasses.replace(report, notes=[*report.notes, *notes]), listing)
    save_workbook(book, path)
    return path


# --------------------------------------------------------------------------- HTML

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif;
  margin: 24px auto; max-width: 1220px; padding: 0 16px; color: #1d1d1f; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #555; margin: 0 0 12px; }
.meta code { background: #f3f3f3; padding: 1px 4px; border-radius: 3px; }
.notes li { margin: 2px 0; }
figure { margin: 12px 0 20px; }
svg.chart { max-width: 100%; height: auto; border: 1px solid #e5e5e5; border-radius: 6px; }
.scroll { overflow-x: auto; border: 1px solid #ddd; border-radius: 6px; }
table { border-collapse: collapse; font-size: 13px; width: max-content; min-width: 100%; }
th, td { padding: 5px 9px; border-bottom: 1px solid #eee; vertical-align: top;
  white-space: nowrap; }
th { background: #f6f6f6; text-align: left; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.text { white-space: normal; max-width: 420px; overflow-wrap: anywhere; }
td.missing { color: #999; }
tbody tr:nth-child(even) { background: #fbfbfb; }
tr.simulated td { background: #fff6e0; }
tr.simulated td:first-child { box-shadow: inset 4px 0 0 #e69f00; }
.badge { display: inline-block; font-size: 11px; padding: 0 6px; margin-left: 6px;
  border-radius: 8px; background: #e69f00; color: #fff; font-weight: 600; }
.count { color: #666; font-size: 13px; margin: 0 0 6px; }
.legend { color: #555; font-size: 13px; }
"""


def _html_cells(shown: _Shown, column: int) -> list[str]:
    """The ``<td>`` of every shown row in one column."""
    name, kind = shown.names[column], shown.kinds[column]
    numeric = kind in NUMERIC_KINDS
    classes = ["num"] if numeric else (["text"] if kind in ("text", "list") else [])
    attr = f' class="{" ".join(classes)}"' if classes else ""
    absent = f'<td class="{" ".join([*classes, "missing"])}">'
    missing: list[str] | None = None
    provider = name == "provider"
    cells = []
    for row, text in enumerate(shown.texts[column]):
        if text is None:
            missing = missing or shown.missing(kind)
            cells.append(f"{absent}{escape(missing[row])}</td>")
            continue
        title = ""
        if len(text) > MAX_DOCUMENT_CELL:
            title = f' title="{escape(_cut(text, 2000))}"'
            text = _cut(text)
        if provider and shown.simulated[row]:
            label = escape(text.removesuffix(SIMULATED_SUFFIX))
            cells.append(f'<td{attr}>{label}<span class="badge">simulated</span></td>')
        else:
            cells.append(f"<td{attr}{title}>{escape(text)}</td>")
    return cells


def html_table(
    name: str,
    table: Table,
    max_rows: int = MAX_DOCUMENT_ROWS,
    headers: dict[str, str] | None = None,
) -> str:
    """One table as ``<table data-table=name>``; simulated rows get ``class="simulated"``.
    ``headers`` shows a column under another header (with its unit)."""
    shown_rows, kinds = _shown(table, max_rows)
    num = ' class="num"'
    titles = headers or {}
    head = "".join(
        f'<th{num if k in NUMERIC_KINDS else ""} scope="col">'
        f"{escape(titles.get(str(c), str(c)))}</th>"
        for c, k in zip(shown_rows.columns, kinds, strict=True)
    )
    # Column by column, not cell by cell: each column's formatting is chosen once (500
    # rows × ~100 columns of a run's requests took ~1 s a cell at a time).
    shown_table = _Shown(shown_rows, kinds)
    columns = [_html_cells(shown_table, i) for i in range(len(shown_table.names))]
    marked = {True: '<tr class="simulated">', False: "<tr>"}
    body = [
        f"{marked[simulated]}{''.join(cells)}</tr>"
        for simulated, cells in zip(shown_table.simulated, zip(*columns, strict=True), strict=True)
    ]
    shown = min(len(table), max_rows)
    count = f"{len(table):,} rows" if shown == len(table) else f"showing {shown:,} of "
    if shown != len(table):
        count += f"{len(table):,} rows; CSV, JSON and XLSX have all"
    return (
        f'<p class="count">{count}</p><div class="scroll"><table data-table="{escape(name)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _chart_table(report: Report) -> pd.DataFrame | None:
    """The first table that compares providers: has ``provider`` and a latency column."""
    for name, table in report.tables.items():
        if name == "requests" or isinstance(table, RowStream) or "provider" not in table:
            continue
        if {"ttft_p50_ms", "e2e_p50_ms"} & set(table.columns) or quality_column(table):
            return table
    return None


def html_page(report: Report) -> str:
    """The whole page as text: self-contained, no script, no external resource."""
    from harness import __version__

    runs = ", ".join(f"<code>{escape(r)}</code>" for r in report.run_ids) or "-"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="harness {escape(__version__)}">',
        f"<title>{escape(report.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<header><h1>{escape(report.title)}</h1>",
        f'<p class="meta">Generated {escape(_generated(report))} · runs: {runs}</p></header>',
    ]
    if report.notes:
        items = "".join(f"<li>{escape(note)}</li>" for note in report.notes)
        parts.append(f'<section class="notes"><h2>Notes</h2><ul>{items}</ul></section>')
    table = _chart_table(report)
    charts = report_charts(table) if table is not None else []
    if charts:
        figures = "".join(f"<figure>{svg}</figure>" for svg in charts)
        parts.append(f'<section class="charts"><h2>Charts</h2>{figures}</section>')
    if _has_simulated(report):
        parts.append(
            '<p class="legend"><span class="badge">simulated</span> rows come from the built-in '
            "simulator: they test the harness and measure no real provider.</p>"
        )
    for i, (name, frame) in enumerate(report.tables.items()):
        parts.append(
            f'<section class="table" id="table-{i}"><h2>{escape(name)}</h2>'
            f"{html_table(name, frame)}</section>"
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)


@register(".html", ".htm")
def export_html(report: Report, path: Path) -> Path:
    """One self-contained page: title, notes, SVG charts, tables."""
    if report.sections:
        from harness.report.document import html_document

        text = html_document(report)
        atomic_write(path, lambda f: f.write(text.encode("utf-8")))
        return path
    text = html_page(report)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return path
