"""Rows written a whole Arrow batch at a time: the CSV text and the XLSX sheet rows of a
:class:`~harness.report.export.RowStream` (a run's per-request rows, up to millions).

Why not cell by cell: Python's ``csv`` writer took > 300 s for 1M rows of the 107-column
schema, and openpyxl's write-only ``append`` 0.8 ms a row (~17 µs a cell without lxml,
~14 min for 1M rows). Here every column of a batch becomes one Arrow string array
(Arrow's kernels: casts, regex replaces, element-wise joins), the columns are joined
into rows, and the rows' bytes are written at once: a few seconds per million rows.

The text is what :mod:`harness.report.export` writes for the same values, with these
deliberate differences, all for the people and programs that open the files:

* floats are Arrow's shortest round-trip text (``1e-7``, ``0.000089``) where Python's
  ``repr`` gives ``1e-07``, ``8.9e-05``: the same digits, the same value in Excel,
  LibreOffice, pandas, Polars and DuckDB; integral floats keep their ``.0`` so a column
  of whole seconds still reads as floats;
* an integer column stays integers in every batch (the row writer goes through pandas,
  where a missing value turns an int64 column into floats written ``1.0``);
* a text cell holding a carriage return is quoted (Python's writer leaves it bare, and
  a bare ``\\r`` ends the row for pandas and spreadsheets);
* strings inside list cells (``references``, ``chat_history``) are scrubbed of
  key-shaped text like every other text cell;
* XLSX numbers are that shortest exact text too, where openpyxl writes 16 significant
  digits (a double needs up to 17 to read back exactly).

Timestamps are ISO 8601 in UTC with microseconds and ``+00:00`` (CSV), or Excel serial
days in UTC (XLSX, exactly openpyxl's conversion); lists and dicts are JSON text;
missing values, NaN and infinities are empty cells.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from harness.report.export import EXCEL_MAX_CELL, Kind, _json_text, name_kind
from harness.secrets import scrub

EXCEL_EPOCH_DAYS = 25_569
"""Days from Excel's 1899-12-30 (day 0 of the 1900 system, after its 1900-02-29) to 1970-01-01."""
_US_PER_DAY = 86_400_000_000
_ILLEGAL_XML = "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f]"  # openpyxl's ILLEGAL_CHARACTERS_RE


def arrow_kinds(schema: pa.Schema) -> list[Kind]:
    """The kind of each column (:func:`~harness.report.export.column_kind`'s rules) from its
    Arrow type: integers stay ``int`` (or their name's kind) even with missing values."""
    columns = [name.lower() for name in schema.names]
    kinds: list[Kind] = []
    for field in schema:
        kind: Kind
        t = field.type
        if pa.types.is_timestamp(t):
            kind = "timestamp"
        elif pa.types.is_boolean(t):
            kind = "bool"
        elif pa.types.is_integer(t):
            kind = name_kind(field.name, columns) or "int"
        elif pa.types.is_floating(t):
            kind = name_kind(field.name, columns) or "float"
        elif pa.types.is_nested(t):
            kind = "list"
        else:
            kind = "text"
        kinds.append(kind)
    return kinds


# --------------------------------------------------------------------------- values


def _array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def _float_text(values: pa.Array, *, json: bool = False) -> pa.Array:
    """Shortest round-trip text of floats, ``.0`` on integral ones; NaN and ±inf missing
    (``null`` in JSON)."""
    finite = pc.is_finite(values)
    if not pc.all(finite).as_py():
        values = pc.if_else(finite, values, pa.scalar(None, values.type))
    text = pc.cast(values, pa.string())
    # Arrow writes 610.0 as "610": the regex only when some value is whole.
    if pc.any(pc.equal(pc.floor(values), values)).as_py():
        whole = pc.match_substring_regex(text, r"^-?\d+$")
        text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
    if json:
        text = pc.fill_null(text, "null")
    return text


def _int_valued(values: pa.Array, text: pa.Array) -> pa.Array:
    """A count stored as a float (pandas after a missing value): whole values as integers."""
    whole = pc.and_(pc.equal(pc.floor(values), values), pc.less(pc.abs(values), 2.0**53))
    whole = pc.fill_null(whole, False)
    as_int = pc.cast(pc.cast(pc.if_else(whole, values, 0.0), pa.int64(), safe=False), pa.string())
    return pc.if_else(whole, as_int, text)


def _list_json(values: pa.Array) -> pa.Array:
    """JSON text of each list (null for a missing list): vectorised for lists of numbers
    and booleans, per row (only the rows that have one) otherwise."""
    t = values.type
    if not (pa.types.is_list(t) or pa.types.is_large_list(t)):
        return _python_json(values)
    item = t.value_type
    if not (pa.types.is_integer(item) or pa.types.is_floating(item) or pa.types.is_boolean(item)):
        return _python_json(values)
    lengths = pc.fill_null(pc.list_value_length(values), 0)
    flat = pc.list_flatten(values)
    if pa.types.is_floating(item):
        items = _float_text(flat, json=True)
    elif pa.types.is_boolean(item):
        items = pc.fill_null(pc.if_else(flat, "true", "false"), "null")
    else:
        items = pc.fill_null(pc.cast(flat, pa.string()), "null")
    offsets = pa.array([0, *pc.cumulative_sum(lengths).to_pylist()], pa.int32())
    lists = pa.ListArray.from_arrays(offsets, items, mask=pc.is_null(values))
    joined = pc.binary_join(lists, ",")
    return pc.binary_join_element_wise("[", joined, "]", "")


def _python_json(values: pa.Array) -> pa.Array:
    """JSON per present row (lists of text, dicts, nested lists), strings scrubbed."""
    out: list[str | None] = []
    seen: dict[Any, str] = {}  # references repeat per case: each distinct list once
    for value in values.to_pylist():
        if value is None:
            out.append(None)
            continue
        key = tuple(value) if isinstance(value, list) else None
        try:
            text = seen[key] if key is not None else None
        except (KeyError, TypeError):
            text = None
        if text is None:
            text = _json_text(_scrubbed(value))
            if key is not None and len(seen) < 10_000:
                with contextlib.suppress(TypeError):  # unhashable items (dicts)
                    seen[key] = text
        out.append(text)
    return pa.array(out, pa.string())


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    return value


def _text(values: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_null(values.type):
        return pa.nulls(len(values), pa.string())
    if pa.types.is_string(values.type):
        return values
    try:
        return pc.cast(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in values.to_pylist()], pa.string())


def _utc_micros(values: pa.Array) -> pa.Array:
    unit = pa.timestamp("us", tz="UTC" if values.type.tz is not None else None)
    return pc.cast(values, unit, safe=False)


def _iso_text(values: pa.Array) -> pa.Array:
    """``YYYY-MM-DDTHH:MM:SS.ffffff`` (UTC for an aware column). ``strftime`` costs ~4 µs a
    value, so it formats each distinct second once and the microseconds are padded
    digits."""
    import numpy as np

    micros = pc.cast(_utc_micros(values), pa.int64())
    valid = pc.is_valid(micros)
    raw = np.asarray(pc.fill_null(micros, 0), dtype=np.int64)
    whole, fraction = np.divmod(raw, 1_000_000)  # floor: right before 1970 too
    seconds = pa.array(whole)
    distinct = pc.unique(seconds)
    stamps = pc.strftime(pc.cast(distinct, pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%S")
    prefix = pc.take(stamps, pc.index_in(seconds, distinct))
    digits = pc.utf8_lpad(pc.cast(pa.array(fraction), pa.string()), 6, "0")
    text = pc.binary_join_element_wise(prefix, digits, ".")
    return pc.if_else(valid, text, pa.scalar(None, pa.string()))


def _number_text(values: pa.Array, kind: Kind) -> pa.Array:
    if pa.types.is_floating(values.type):
        text = _float_text(values)
        return _int_valued(values, text) if kind == "int" else text
    return pc.cast(values, pa.string())


# --------------------------------------------------------------------------- CSV


def csv_header(names: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([str(n) for n in names])
    return buffer.getvalue().encode("utf-8")


def _csv_quoted(text: pa.Array) -> pa.Array:
    needs = pc.match_substring_regex(text, '[,"\\r\\n]')
    doubled = pc.replace_substring(text, '"', '""')
    return pc.if_else(needs, pc.binary_join_element_wise('"', doubled, '"', ""), text)


def csv_cell_text(values: pa.Array, kind: Kind) -> pa.Array:
    """One column as CSV fields (null where the cell is empty)."""
    t = values.type
    if kind == "timestamp" and pa.types.is_timestamp(t):
        text = _iso_text(values)
        return pc.binary_join_element_wise(text, "+00:00", "") if t.tz is not None else text
    if pa.types.is_boolean(t):
        return pc.if_else(values, "True", "False")
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return _number_text(values, kind)
    if pa.types.is_nested(t):
        return _csv_quoted(_list_json(values))
    return _csv_quoted(_text(values))


def csv_rows(table: pa.Table, kinds: Sequence[Kind]) -> pa.Buffer | bytes:
    """The table's rows as CSV bytes (no header), each ending in ``\\n``."""
    if table.num_rows == 0:
        return b""
    if table.num_columns == 0:
        return b"\n" * table.num_rows
    parts: list[Any] = []
    for i, kind in enumerate(kinds):
        column = _array(table.column(i))
        if i:
            parts.append(",")
        if column.null_count < len(column):  # an empty column is only its comma
            parts.append(pc.fill_null(csv_cell_text(column, kind), ""))
    parts.append("\n")
    return _concatenated(_joined(parts, table.num_rows))


def _joined(parts: list[Any], rows: int) -> pa.Array:
    """Arrays and literal strings joined element-wise (adjacent literals merged first)."""
    merged: list[Any] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    if not any(isinstance(part, pa.Array) for part in merged):
        return pa.array(["".join(merged)] * rows, pa.string())
    return pc.binary_join_element_wise(*merged, "")


def _concatenated(lines: pa.Array) -> pa.Buffer | bytes:
    """The bytes of every string of ``lines``, one after the other (no copy: the data
    buffer's slice)."""
    import numpy as np

    offsets, data = lines.buffers()[1], lines.buffers()[2]
    if offsets is None or data is None:
        return b""
    wide = pa.types.is_large_string(lines.type)
    bounds = np.frombuffer(offsets, dtype=np.int64 if wide else np.int32)
    bounds = bounds[lines.offset : lines.offset + len(lines) + 1]
    return data.slice(int(bounds[0]), int(bounds[-1] - bounds[0]))


# --------------------------------------------------------------------------- XLSX


def excel_serial(values: pa.Array) -> pa.Array:
    """Timestamps as Excel serial days in UTC (naive taken as UTC), exactly as openpyxl's
    ``to_excel`` computes them: whole days + (seconds of the day + µs / 10⁶) / 86,400."""
    import numpy as np

    micros = pc.cast(_utc_micros(values), pa.int64())
    valid = pc.is_valid(micros)
    raw = np.asarray(pc.fill_null(micros, 0), dtype=np.int64)
    days = np.floor_divide(raw, _US_PER_DAY)
    within = raw - days * _US_PER_DAY
    seconds = within // 1_000_000
    fraction = (seconds + (within % 1_000_000) / 10**6) / 86_400
    serial = (days + EXCEL_EPOCH_DAYS) + fraction
    return pc.if_else(valid, pa.array(serial, pa.float64()), pa.scalar(None, pa.float64()))


def _xml_text(text: pa.Array) -> pa.Array:
    """Text as openpyxl stores it: control characters replaced, cut at Excel's cell limit,
    ``&``, ``<``, ``>`` escaped."""
    text = pc.replace_substring_regex(text, _ILLEGAL_XML, "\N{REPLACEMENT CHARACTER}")
    long = pc.fill_null(pc.greater(pc.utf8_length(text), EXCEL_MAX_CELL), False)
    if pc.any(long).as_py():
        cut = pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(text, 0, EXCEL_MAX_CELL - 1), "…", ""
        )
        text = pc.if_else(long, cut, text)
    text = pc.replace_substring(text, "&", "&amp;")
    text = pc.replace_substring(text, "<", "&lt;")
    return pc.replace_substring(text, ">", "&gt;")


def xlsx_cell_xml(
    values: pa.Array, kind: Kind, column: str, rows: pa.Array, style: int | None
) -> pa.Array:
    """One column as ``<c>`` elements (null where the cell is empty, so it is left out);
    ``rows`` holds each row's number as text, ``column`` the column's letters."""
    t = values.type
    styled = f' s="{style}"' if style else ""
    head = f'<c r="{column}'
    if kind == "timestamp" and pa.types.is_timestamp(t):
        body = _number_text(excel_serial(values), "float")
        return pc.binary_join_element_wise(head, rows, f'"{styled}><v>', body, "</v></c>", "")
    if pa.types.is_boolean(t):
        body = pc.if_else(values, "1", "0")
        return pc.binary_join_element_wise(head, rows, '" t="b"><v>', body, "</v></c>", "")
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        body = _number_text(values, kind)
        return pc.binary_join_element_wise(head, rows, f'"{styled}><v>', body, "</v></c>", "")
    text = _list_json(values) if pa.types.is_nested(t) else _text(values)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    return pc.binary_join_element_wise(
        head,
        rows,
        '" t="inlineStr"><is><t xml:space="preserve">',
        _xml_text(text),
        "</t></is></c>",
        "",
    )


def xlsx_rows(
    table: pa.Table,
    kinds: Sequence[Kind],
    letters: Sequence[str],
    styles: Sequence[int | None],
    first_row: int,
) -> pa.Buffer | bytes:
    """The table's rows as ``<row>`` elements of a sheet's ``<sheetData>``, numbered from
    ``first_row``."""
    n = table.num_rows
    if n == 0:
        return b""
    numbers = pc.cast(pa.array(range(first_row, first_row + n), pa.int64()), pa.string())
    parts: list[Any] = ['<row r="', numbers, '">']
    for i, kind in enumerate(kinds):
        column = _array(table.column(i))
        if column.null_count < len(column):  # an empty column has no cell
            cells = xlsx_cell_xml(column, kind, letters[i], numbers, styles[i])
            parts.append(pc.fill_null(cells, ""))
    parts.append("</row>")
    return _concatenated(_joined(parts, n))
