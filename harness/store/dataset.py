"""One reader for every report: the columns it needs, the rows it asks for, in one scan.

``read_rows(root, run_ids, columns=..., where=...)`` reads the runs' parts as one
``pyarrow.dataset`` (multi-threaded, only the named columns decoded, ``where`` pushed
down to row-group statistics and then applied to rows), plus the rows still in their
journal segments (a running or crashed run), selected and filtered alike. Parts from
older versions that lack newer columns read them as nulls (the dataset's schema is
:data:`~harness.store.schema.SCHEMA`); a part the dataset cannot cast is read on its
own and conformed.

Why pyarrow.dataset rather than DuckDB: pyarrow is already what writes the parts and
a runtime dependency; DuckDB is a dev dependency only. Grouping and percentiles are
then numpy's, on whole columns.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from harness.errors import StoreError
from harness.store.files import (
    JOURNAL_GLOB,
    PART_GLOB,
    RunFiles,
    file_number,
    part_path,
    run_files,
    validate_run_id,
)
from harness.store.schema import COLUMNS, SCHEMA, conform
from harness.store.segments import read_segment

log = logging.getLogger(__name__)

Where = Mapping[str, str | Sequence[str]]
"""Column -> the value (or values) a row must have, e.g. ``{"provider": ["a", "b"]}``."""

_RETRIES = 3  # a part merged away between listing and reading: list again


def read_rows(
    root: Path,
    run_ids: Sequence[str],
    *,
    columns: Sequence[str] | None = None,
    where: Where | None = None,
    dictionary: Collection[str] = (),
) -> pa.Table:
    """The rows of ``run_ids`` under ``root``: ``columns`` of them (default: all, in
    schema order), those matching ``where``.

    ``dictionary``: text columns to return dictionary-encoded (``dictionary<int32,
    string>``, the same values): Parquet stores a low-cardinality text column (suite,
    provider, status...) as a dictionary, and decoding a million rows of it into
    strings costs more than keeping the dictionary (:func:`decode_text` decodes later).

    Raises:
        StoreError: for an unknown run or column, or a part that cannot be read.
    """
    root = Path(root)
    names = _names(columns)
    condition = _condition(where)
    encoded = _dictionary_names(names, dictionary)
    for attempt in range(_RETRIES):
        try:
            return _read(root, run_ids, names, condition, encoded)
        except FileNotFoundError:  # merged (or compacted) while we read: list again
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def read_batches(
    root: Path,
    run_ids: Sequence[str],
    *,
    columns: Sequence[str] | None = None,
    batch_rows: int = 65_536,
) -> Iterator[pa.Table]:
    """The same rows as :func:`read_rows`, a table of at most ``batch_rows`` at a time
    (for exports that stream): parts first, then journal rows. At least one table,
    empty when there is no row, so a writer always knows the columns."""
    root = Path(root)
    names = _names(columns)
    schema = pa.schema([SCHEMA.field(n) for n in names])
    parts: list[Path] = []
    journaled: list[pa.Table] = []
    for run_id in run_ids:
        run_dir = root / validate_run_id(run_id)
        files = run_files(run_dir)
        parts += files.parts
        journaled += [t.select(names) for t in _journal_tables(run_dir, files)]
    yielded = False
    if parts:
        dataset = ds.dataset([str(p) for p in parts], schema=SCHEMA, format="parquet")
        for batch in dataset.to_batches(columns=names, batch_size=batch_rows):
            if batch.num_rows:
                yielded = True
                yield pa.Table.from_batches([batch], schema=schema)
    for table in journaled:
        for start in range(0, table.num_rows, batch_rows):
            yielded = True
            yield table.slice(start, batch_rows)
    if not yielded:
        yield schema.empty_table()


def _names(columns: Sequence[str] | None) -> list[str]:
    if columns is None:
        return list(SCHEMA.names)
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise StoreError(f"no column {', '.join(map(repr, unknown))} in the results schema")
    wanted = set(columns)
    return [name for name in SCHEMA.names if name in wanted]


def _condition(where: Where | None) -> ds.Expression | None:
    condition = None
    for column, wanted in (where or {}).items():
        if column not in COLUMNS:
            raise StoreError(f"no column {column!r} in the results schema to filter on")
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        term = ds.field(column).isin(values)
        condition = term if condition is None else condition & term
    return condition


def _dictionary_names(names: list[str], dictionary: Collection[str]) -> frozenset[str]:
    """The ``dictionary`` columns among ``names``; StoreError for one that is not text."""
    wanted = frozenset(dictionary) & frozenset(names)
    for name in wanted:
        if not pa.types.is_string(SCHEMA.field(name).type):
            raise StoreError(f"column {name!r} is not text: it has no dictionary to read")
    return wanted


def _schema(encoded: Collection[str], names: Collection[str] | None = None) -> pa.Schema:
    """The schema's fields (``names`` of them, default all), the ``encoded`` ones as
    dictionaries."""
    return pa.schema(
        [
            f.with_type(_TEXT_DICTIONARY) if f.name in encoded else f
            for f in SCHEMA
            if names is None or f.name in names
        ]
    )


_TEXT_DICTIONARY = pa.dictionary(pa.int32(), pa.string())


def _encode(table: pa.Table, encoded: Collection[str]) -> pa.Table:
    """``table`` with its ``encoded`` columns dictionary-encoded (rows read from journal
    segments, or from parts read one at a time, beside a dictionary scan)."""
    for name in encoded:
        i = table.schema.get_field_index(name)
        if i >= 0 and not pa.types.is_dictionary(table.schema.field(i).type):
            column = pc.dictionary_encode(table.column(i))
            table = table.set_column(i, table.schema.field(i).with_type(_TEXT_DICTIONARY), column)
    return table


def decode_text(table: pa.Table) -> pa.Table:
    """``table`` with every dictionary-encoded text column decoded into strings (the
    schema's type), each in one chunk: the values a plain read gives, with one copy
    of the strings (not one per row group, then another to join them)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type) and pa.types.is_string(field.type.value_type):
            column = table.column(i)
            # One dictionary for every chunk (their indices renumbered), then one take.
            one = column.combine_chunks() if column.num_chunks else column.type.empty()  # type: ignore[attr-defined]
            plain = pa.chunked_array([one.cast(pa.string())], type=pa.string())
            target = SCHEMA.field(field.name) if field.name in COLUMNS else field
            table = table.set_column(i, target.with_type(pa.string()), plain)
    return table


def _read(
    root: Path,
    run_ids: Sequence[str],
    names: list[str],
    condition: ds.Expression | None,
    encoded: frozenset[str] = frozenset(),
) -> pa.Table:
    parts: list[Path] = []
    journaled: list[pa.Table] = []
    for run_id in run_ids:
        run_dir = root / validate_run_id(run_id)
        if not run_dir.is_dir() or not _has_rows(run_dir):
            from harness.store.parts import list_runs

            raise StoreError(f"{root}: no run {run_id!r} (known: {', '.join(list_runs(root))})")
        files = run_files(run_dir)
        parts += files.parts
        journaled += [
            _encode(_select(t, names, condition), encoded) for t in _journal_tables(run_dir, files)
        ]
    schema = _schema(encoded, names)
    tables = [_scan(parts, names, condition, encoded)] if parts else []
    tables += journaled
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def _has_rows(run_dir: Path) -> bool:
    # A run killed before its first part is compacted has only journal segments.
    return any(run_dir.glob(PART_GLOB)) or any(run_dir.glob(JOURNAL_GLOB))


def _scan(
    parts: list[Path],
    names: list[str],
    condition: ds.Expression | None,
    encoded: frozenset[str] = frozenset(),
) -> pa.Table:
    for part in parts:
        if not part.exists():
            raise FileNotFoundError(part)
    try:
        if encoded:
            # The pages' own dictionaries, kept (the dataset's schema says so).
            options = ds.ParquetReadOptions(dictionary_columns=sorted(encoded))
            fmt: ds.FileFormat | str = ds.ParquetFileFormat(read_options=options)
            schema = _schema(encoded)
        else:
            fmt, schema = "parquet", SCHEMA
        dataset = ds.dataset([str(p) for p in parts], schema=schema, format=fmt)
        return dataset.to_table(columns=names, filter=condition)
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # A part whose types the dataset cannot cast, or an unreadable one: read each
        # on its own, so that the unreadable one is named.
        return pa.concat_tables(
            [_encode(_select(_read_part(p), names, condition), encoded) for p in parts]
        )


def _read_part(part: Path) -> pa.Table:
    try:
        return conform(pq.read_table(part))
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowInvalid) as exc:
        raise StoreError(f"{part}: unreadable Parquet part: {exc}") from None


def _select(table: pa.Table, names: list[str], condition: ds.Expression | None) -> pa.Table:
    table = table.select(names) if condition is None else table
    if condition is not None:
        table = ds.dataset(table).to_table(columns=names, filter=condition)
    return table


def _journal_tables(run_dir: Path, files: RunFiles) -> list[pa.Table]:
    """Rows of the run's uncovered journal segments (a running or crashed run)."""
    journaled: dict[int, list[pa.Table]] = {}
    compacted: set[int] = set()  # numbers whose part appeared while we read
    for segment in files.segments:
        number = file_number(segment)
        if number in compacted:
            continue
        try:
            table, notes = read_segment(segment)
        except FileNotFoundError:
            # Compacted since it was listed: its part (written before the
            # segment's files were deleted) replaces both of its files.
            compacted.add(number)
            journaled[number] = [_read_part(part_path(run_dir, number))]
            continue
        for note in notes:
            log.warning("%s: %s", run_dir.name, note)
        journaled.setdefault(number, []).append(table)
    return [t for group in journaled.values() for t in group]


def redact_text(table: pa.Table) -> pa.Table:
    """The table with key-shaped text removed from its string cells, as
    :func:`harness.secrets.redact_frame` does for a DataFrame, at a cost that a million
    rows allow: a vectorised regex (:data:`~harness.secrets.SCRUB_CANDIDATE`, a
    superset of what :func:`~harness.secrets.scrub` replaces) finds the cells that may
    hold one, and only those go through ``scrub``. A column with a secret name loses
    every value.
    """
    from harness.secrets import REDACTED, SCRUB_CANDIDATE, is_secret_name, scrub

    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type) and pa.types.is_string(field.type.value_type):
            # A dictionary column (read_rows(dictionary=...)): its values are scrubbed
            # in the dictionaries themselves, the rows keep pointing at them.
            table = table.set_column(i, field, _redact_dictionary(table.column(i), field.name))
            continue
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        column = table.column(i)
        if is_secret_name(field.name):
            redacted = pc.if_else(pc.is_null(column), column, pa.scalar(REDACTED, field.type))
            table = table.set_column(i, field, redacted)
            continue
        # Each distinct value is checked once: most text columns hold a few (suite,
        # provider, status), and an answer column is no worse off. Only a column with
        # a candidate is encoded (its rows pointed at the scrubbed values).
        if not pc.any(pc.match_substring_regex(pc.unique(column), SCRUB_CANDIDATE)).as_py():
            continue
        encoded = pc.dictionary_encode(column).combine_chunks()
        distinct = encoded.dictionary
        candidate = pc.fill_null(pc.match_substring_regex(distinct, SCRUB_CANDIDATE), False)
        values = distinct.to_pylist()
        for j in pc.indices_nonzero(candidate).to_pylist():
            values[j] = scrub(values[j])
        scrubbed = pc.take(pa.array(values, field.type), encoded.indices)
        table = table.set_column(i, field, scrubbed)
    return table


def _redact_dictionary(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    """:func:`redact_text` of a dictionary-encoded text column: the same values once
    decoded, from each chunk's dictionary (a few values) instead of its rows."""
    from harness.secrets import REDACTED, SCRUB_CANDIDATE, is_secret_name, scrub

    # One dictionary for the column (a chunk per row group each have their own): the
    # regex then runs once, over the column's distinct values.
    one = column.combine_chunks() if column.num_chunks else column.type.empty()  # type: ignore[attr-defined]
    distinct = one.dictionary
    if is_secret_name(name):
        values = [None if v is None else REDACTED for v in distinct.to_pylist()]
    else:
        candidate = pc.fill_null(pc.match_substring_regex(distinct, SCRUB_CANDIDATE), False)
        if not pc.any(candidate).as_py():
            return pa.chunked_array([one], type=column.type)
        values = distinct.to_pylist()
        for j in pc.indices_nonzero(candidate).to_pylist():
            values[j] = scrub(values[j])
    scrubbed = pa.DictionaryArray.from_arrays(one.indices, pa.array(values, distinct.type))
    return pa.chunked_array([scrubbed], type=column.type)
