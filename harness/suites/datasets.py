"""Question-answering datasets for the RAG QA suite: load, validate and convert cases.

A :class:`Case` is one question with the passages it should be answered from and its
reference answers. An **empty** ``references`` list means the question is unanswerable from
its contexts: the expected behaviour is to abstain (the prompt asks for "I don't know").

:func:`load_cases` reads the project's own JSONL and a few common layouts, and reports bad
input as :class:`DatasetError` naming the file and the place (``file:line`` for JSONL and
CSV, ``file: data[3].paragraphs[0].qas[2]`` for JSON, ``file: row 7`` for Parquet, rows
counted from 0) and what is wrong. It never lets a raw parser exception escape.
:func:`import_dataset` converts any accepted input into the project's JSONL.

Accepted formats
----------------

The container comes from the extension (``.jsonl``/``.ndjson``, ``.json``, ``.csv``,
``.parquet``/``.pq``; a ``.json`` file holding JSON Lines is read as JSONL; other names
are sniffed: Parquet magic bytes, or JSON / JSON Lines if the text starts with ``{`` or ``[``;
anything else needs an explicit ``format``). The layout comes from the keys
(column names) of the first record:

* ``references`` present → **project** layout;
* ``context`` and ``answers`` present → **SQuAD row** layout;
* any of ``ground_truth``, ``ground_truths``, ``reference``, ``answer``, ``user_input``,
  ``retrieved_contexts`` → **ragas** layout;
* a JSON object with a ``data`` list → the official **SQuAD** JSON layout.

An explicit ``format`` overrides: ``"jsonl"``, ``"csv"`` and ``"parquet"`` force the
container (layout still detected), ``"squad"`` and ``"ragas"`` force the layout (container
from the extension).

Field mapping (``stem`` is the file name without extension, ``index`` the 0-based position
of the record in the file):

| layout | case field | taken from |
| --- | --- | --- |
| project | `id` | `id` (string or integer); missing or empty → `{stem}-{index}` |
| | `question` | `question` (non-empty string) |
| | `contexts` | `contexts`: list of non-empty strings (CSV/Parquet: or a JSON-encoded list) |
| | `references` | `references`: list of strings, `[]` = unanswerable (required) |
| | `metadata` | `metadata`: object (CSV/Parquet: or JSON-encoded); other keys are errors |
| official SQuAD JSON `{"data": [...]}` | `id` | `data[i].paragraphs[j].qas[k].id` |
| | `question` | `qas[k].question` |
| | `contexts` | `[paragraphs[j].context]` |
| | `references` | `qas[k].answers[*].text`, deduplicated in order; `is_impossible: true` → `[]` |
| | `metadata` | `{"title": data[i].title, "plausible_answers": [texts]}` (when present) |
| SQuAD row (e.g. `squad-v2/sample-200.jsonl`) | `id` | `id` |
| | `question` | `question` |
| | `contexts` | `[context]` |
| | `references` | `answers` (strings or `{"text": ...}`), deduplicated; `is_impossible` → `[]` |
| | `metadata` | `title`, `plausible_answers` and any other keys |
| ragas | `id` | `id` if present, else `{stem}-{index}` |
| | `question` | `question`, else `user_input` (ragas >= 0.2) |
| | `contexts` | `contexts` or `retrieved_contexts` (list or JSON-encoded list), or `[context]` |
| | `references` | first present of `ground_truths` (list), `ground_truth`, `reference`, `answer` |
| | `metadata` | `metadata` object plus every other column (e.g. a generated `answer`) |

Everywhere: empty or whitespace-only references are dropped and duplicates removed (order
kept), so a case whose references are all empty is unanswerable; ids must be unique in a
file; ``NaN``/``Infinity`` are not accepted as JSON. In the ragas layout ``answer`` is the
reference only when no ground-truth column exists (in ragas it usually holds the *generated*
answer, and is then kept in ``metadata``). CSV cells holding lists may use JSON (``["a"]``)
or Python literal syntax (``['a']``, as ``pandas.to_csv`` writes lists).
"""

from __future__ import annotations

import ast
import codecs
import contextlib
import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from harness.errors import HarnessError

__all__ = [
    "FORMATS",
    "Case",
    "DatasetError",
    "import_dataset",
    "load_cases",
    "write_jsonl",
]

FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet", "squad", "ragas")
"""Values accepted for ``format`` (``None`` or ``"auto"`` detect it)."""

_PROJECT_KEYS = ("id", "question", "contexts", "references", "metadata")
_RAGAS_KEYS = frozenset(
    {"ground_truth", "ground_truths", "reference", "answer", "user_input", "retrieved_contexts"}
)
_RAGAS_REFERENCE_KEYS = ("ground_truths", "ground_truth", "reference", "references", "answer")
_SQUAD_ROW_KEYS = frozenset({"id", "question", "context", "answers", "is_impossible"})
_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_CSV_FIELD_LIMIT = 64 * 1024 * 1024
# Characters that json.dumps(ensure_ascii=False) leaves raw but str.splitlines() splits on.
_ESCAPE_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


class DatasetError(HarnessError):
    """A dataset is invalid; the message names the file, the line or record, and the problem."""


@dataclass(frozen=True)
class Case:
    """One question, the passages to answer it from, and its reference answers.

    ``references`` empty means the contexts do not answer the question (unanswerable).
    """

    id: str
    question: str
    contexts: list[str]
    references: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def answerable(self) -> bool:
        """True if the case has at least one reference answer."""
        return bool(self.references)

    def to_dict(self) -> dict[str, Any]:
        """The case as one object of the project's JSONL."""
        return {
            "id": self.id,
            "question": self.question,
            "contexts": list(self.contexts),
            "references": list(self.references),
            "metadata": dict(self.metadata),
        }


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class _Record:
    """One raw record and where it came from."""

    where: str  # error prefix: "file:12", "file: data[0].paragraphs[1].qas[2]", "file: row 3"
    loc: str  # the place alone: "line 12", "data[0]...", "row 3"
    data: Mapping[str, Any]
    encoded: bool  # lists/objects may arrive as encoded strings (CSV cells, Parquet, ragas)

    def fail(self, problem: str) -> NoReturn:
        raise DatasetError(f"{self.where}: {problem}")


@dataclass(frozen=True)
class _Fields:
    id: str | None
    question: str
    contexts: list[str]
    references: list[str]
    metadata: dict[str, Any]


_MISSING: Any = object()


def _typename(value: Any) -> str:
    names = {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        tuple: "a list",
        dict: "an object",
    }
    return names.get(type(value), type(value).__name__)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_loads(text: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity (they cannot be written back as JSON)."""
    return json.loads(text, parse_constant=_reject_constant)


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg} (column {exc.colno})"
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply"
    return f"invalid JSON: {exc}"


def _decode_encoded(rec: _Record, key: str, text: str, opener: str) -> Any:
    """Decode a list or object that arrived as a string (a CSV cell, a ragas column)."""
    stripped = text.strip()
    if not stripped.startswith(opener):
        kind = "list of strings" if opener == "[" else "object"
        rec.fail(f"{key}: expected a JSON-encoded {kind}, got the string {_short(stripped)!r}")
    try:
        return _json_loads(stripped)
    except (ValueError, RecursionError):
        pass
    try:
        # Python literal syntax, as pandas.to_csv writes lists: ['a', 'b']. literal_eval
        # evaluates literals only, never code.
        return ast.literal_eval(stripped)
    except Exception:
        rec.fail(f"{key}: not valid JSON: {_short(stripped)!r}")


def _get(rec: _Record, key: str) -> Any:
    """The value of ``key``, or ``_MISSING`` if absent or null."""
    value = rec.data.get(key, _MISSING)
    return _MISSING if value is None else value


def _question(rec: _Record, key: str) -> str:
    value = _get(rec, key)
    if value is _MISSING:
        rec.fail(f"missing {key}")
    if not isinstance(value, str):
        rec.fail(f"{key} must be a string, got {_typename(value)}")
    if not value.strip():
        rec.fail(f"{key} is empty")
    return value


def _string_list(rec: _Record, key: str, value: Any, *, texts: bool = False) -> list[str]:
    """A list of strings; with ``texts``, items may also be ``{"text": ...}`` (SQuAD)."""
    if isinstance(value, str) and rec.encoded:
        value = [] if not value.strip() else _decode_encoded(rec, key, value, "[")
    if not isinstance(value, list | tuple):
        rec.fail(f"{key} must be a list of strings, got {_typename(value)}")
    out: list[str] = []
    for i, item in enumerate(value):
        if texts and isinstance(item, Mapping):
            if "text" not in item:
                rec.fail(f"{key}[{i}]: missing text")
            item = item["text"]
        if not isinstance(item, str):
            rec.fail(f"{key}[{i}] must be a string, got {_typename(item)}")
        out.append(item)
    return out


def _contexts(rec: _Record, key: str, value: Any) -> list[str]:
    contexts = _string_list(rec, key, value)
    if not contexts:
        rec.fail(f"{key} is empty (a case needs at least one passage)")
    for i, passage in enumerate(contexts):
        if not passage.strip():
            rec.fail(f"{key}[{i}] is an empty passage")
    return contexts


def _clean_references(references: Iterable[str]) -> list[str]:
    """Drop empty/whitespace-only references and duplicates, keeping the first order."""
    out: list[str] = []
    for ref in references:
        if ref.strip() and ref not in out:
            out.append(ref)
    return out


def _jsonable(value: Any) -> Any:
    """Metadata values as plain JSON data (Parquet may hand over dates, decimals, bytes)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return str(isoformat())
    return str(value)


def _metadata(rec: _Record, key: str) -> dict[str, Any]:
    value = _get(rec, key)
    if value is _MISSING:
        return {}
    if isinstance(value, str) and rec.encoded:
        value = {} if not value.strip() else _decode_encoded(rec, key, value, "{")
    if not isinstance(value, Mapping):
        rec.fail(f"{key} must be an object, got {_typename(value)}")
    result: dict[str, Any] = _jsonable(value)
    return result


def _case_id(rec: _Record, key: str = "id") -> str | None:
    value = _get(rec, key)
    if value is _MISSING:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        rec.fail(f"{key} must be a string or an integer, got {_typename(value)}")
    text = str(value)
    return text if text.strip() else None


def _boolean(rec: _Record, key: str) -> bool:
    value = _get(rec, key)
    if value is _MISSING:
        return False
    if isinstance(value, str) and rec.encoded:
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no", ""):
            return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise DatasetError(f"{rec.where}: {key} must be true or false, got {_typename(value)}")


# --------------------------------------------------------------------------- layouts


def _project_fields(rec: _Record) -> _Fields:
    unknown = [key for key in rec.data if key not in _PROJECT_KEYS]
    if unknown:
        rec.fail(f"unknown key {unknown[0]!r} (a case has: {', '.join(_PROJECT_KEYS)})")
    contexts = _get(rec, "contexts")
    if contexts is _MISSING:
        rec.fail("missing contexts")
    references = _get(rec, "references")
    if references is _MISSING:
        rec.fail("missing references (use [] for an unanswerable question)")
    return _Fields(
        id=_case_id(rec),
        question=_question(rec, "question"),
        contexts=_contexts(rec, "contexts", contexts),
        references=_clean_references(_string_list(rec, "references", references)),
        metadata=_metadata(rec, "metadata"),
    )


def _squad_row_fields(rec: _Record) -> _Fields:
    context = _get(rec, "context")
    if context is _MISSING:
        rec.fail("missing context")
    if not isinstance(context, str):
        rec.fail(f"context must be a string, got {_typename(context)}")
    if not context.strip():
        rec.fail("context is empty")
    answers = _get(rec, "answers")
    if answers is _MISSING:
        rec.fail("missing answers (use [] with is_impossible: true for an unanswerable question)")
    texts = _string_list(rec, "answers", answers, texts=True)
    impossible = _boolean(rec, "is_impossible")
    metadata: dict[str, Any] = {}
    title = _get(rec, "title")
    if title is not _MISSING:
        metadata["title"] = _jsonable(title)
    plausible = _get(rec, "plausible_answers")
    if plausible is not _MISSING:
        plausible_texts = _string_list(rec, "plausible_answers", plausible, texts=True)
        metadata["plausible_answers"] = _clean_references(plausible_texts)
    for key, value in rec.data.items():
        if key not in _SQUAD_ROW_KEYS | {"title", "plausible_answers"}:
            metadata[key] = _jsonable(value)
    return _Fields(
        id=_case_id(rec),
        question=_question(rec, "question"),
        contexts=[context],
        references=[] if impossible else _clean_references(texts),
        metadata=metadata,
    )


def _ragas_fields(rec: _Record) -> _Fields:
    used: set[str] = {"id", "metadata"}
    question_key = "question" if "question" in rec.data else "user_input"
    used.add(question_key)
    question = _question(rec, question_key)
    for key in ("contexts", "retrieved_contexts", "context"):
        value = _get(rec, key)
        if value is not _MISSING:
            used.add(key)
            if key == "context" and isinstance(value, str) and not value.lstrip().startswith("["):
                value = [value]
            contexts = _contexts(rec, key, value)
            break
    else:
        rec.fail("missing contexts (or retrieved_contexts)")
    for key in _RAGAS_REFERENCE_KEYS:
        if key in rec.data:
            used.add(key)
            value = rec.data[key]
            if value is None:
                references: list[str] = []
            elif isinstance(value, str) and key in ("ground_truth", "reference", "answer"):
                references = [value]
            else:
                references = _string_list(rec, key, value)
            break
    else:
        rec.fail("missing reference answer: no ground_truth, ground_truths, reference or answer")
    metadata = _metadata(rec, "metadata")
    for key, value in rec.data.items():
        if key not in used:
            metadata[key] = _jsonable(value)
    return _Fields(
        id=_case_id(rec),
        question=question,
        contexts=contexts,
        references=_clean_references(references),
        metadata=metadata,
    )


_LAYOUTS: dict[str, Callable[[_Record], _Fields]] = {
    "project": _project_fields,
    "squad_row": _squad_row_fields,
    "ragas": _ragas_fields,
}


def _detect_layout(keys: Iterable[str]) -> str | None:
    names = set(keys)
    if "references" in names:
        return "project"
    if "context" in names and "answers" in names:
        return "squad_row"
    if names & _RAGAS_KEYS:
        return "ragas"
    return None


# --------------------------------------------------------------------------- containers


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a directory, not a dataset file") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, bom + exc.start) + 1
        byte = raw[bom + exc.start]
        raise DatasetError(
            f"{path}:{line}: not UTF-8 text (byte 0x{byte:02x} at offset {bom + exc.start})"
        ) from None


def _jsonl_records(path: Path, text: str, encoded: bool) -> Iterator[_Record]:
    # split("\n"), not splitlines(): U+2028 and friends may appear raw inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            value = _json_loads(line)
        except (ValueError, RecursionError) as exc:
            raise DatasetError(f"{where}: {_json_problem(exc)}") from None
        if not isinstance(value, dict):
            raise DatasetError(f"{where}: expected a JSON object, got {_typename(value)}")
        yield _Record(where=where, loc=f"line {number}", data=value, encoded=encoded)


def _csv_records(path: Path, text: str) -> Iterator[_Record]:
    previous_limit = csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        header: list[str] | None = None
        end = 0  # last physical line consumed so far
        while True:
            start = end + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DatasetError(f"{path}:{reader.line_num}: invalid CSV: {exc}") from None
            end = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                for i, name in enumerate(header):
                    if not name:
                        raise DatasetError(f"{path}:{start}: column {i + 1} has no name")
                    if name in header[:i]:
                        raise DatasetError(f"{path}:{start}: duplicate column {name!r}")
                continue
            if len(row) != len(header):
                raise DatasetError(
                    f"{path}:{start}: {len(row)} fields, but the header has {len(header)}"
                )
            yield _Record(
                where=f"{path}:{start}",
                loc=f"line {start}",
                data=dict(zip(header, row, strict=True)),
                encoded=True,
            )
    finally:
        csv.field_size_limit(previous_limit)


def _parquet_records(path: Path) -> Iterator[_Record]:
    try:
        import pyarrow.parquet as pq

        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise DatasetError(f"{path}: cannot read as Parquet: {_short(str(exc), 200)}") from None
    for index, row in enumerate(rows):
        data = {k: v for k, v in row.items() if not k.startswith("__index_level_")}
        yield _Record(where=f"{path}: row {index}", loc=f"row {index}", data=data, encoded=True)


def _squad_records(path: Path, document: Mapping[str, Any]) -> Iterator[_Record]:
    """The questions of the official SQuAD layout, as SQuAD-row records."""

    def fail(place: str, problem: str) -> NoReturn:
        raise DatasetError(f"{path}: {place}: {problem}")

    articles = document["data"]
    for i, article in enumerate(articles):
        a_place = f"data[{i}]"
        if not isinstance(article, dict):
            fail(a_place, f"expected an object, got {_typename(article)}")
        paragraphs = article.get("paragraphs")
        if not isinstance(paragraphs, list):
            fail(f"{a_place}.paragraphs", "missing or not a list")
        title = article.get("title")
        for j, paragraph in enumerate(paragraphs):
            p_place = f"{a_place}.paragraphs[{j}]"
            if not isinstance(paragraph, dict):
                fail(p_place, f"expected an object, got {_typename(paragraph)}")
            context = paragraph.get("context")
            if not isinstance(context, str):
                fail(f"{p_place}.context", "missing or not a string")
            qas = paragraph.get("qas")
            if not isinstance(qas, list):
                fail(f"{p_place}.qas", "missing or not a list")
            for k, qa in enumerate(qas):
                place = f"{p_place}.qas[{k}]"
                if not isinstance(qa, dict):
                    fail(place, f"expected an object, got {_typename(qa)}")
                data = {"context": context, **({"title": title} if title is not None else {})}
                data.update(qa)
                if "answers" not in data:
                    data["answers"] = []
                yield _Record(where=f"{path}: {place}", loc=place, data=data, encoded=False)


def _json_records(path: Path, text: str, layout: str | None) -> Iterator[_Record] | None:
    """Records of a whole-file JSON document, or None if the text is JSON Lines instead."""
    try:
        document = _json_loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            return None  # more than one value: JSON Lines
        raise DatasetError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise DatasetError(f"{path}: {_json_problem(exc)}") from None
    encoded = layout == "ragas"
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        if layout not in (None, "squad_row"):
            raise DatasetError(f"{path}: this is the SQuAD JSON layout, not {layout}")
        return _squad_records(path, document)
    if isinstance(document, list):
        return _list_records(path, document, encoded)
    if (
        isinstance(document, dict)
        and document
        and all(isinstance(v, list) for v in document.values())
    ):
        return _column_records(path, document, encoded)
    if isinstance(document, dict) and document:
        # A single record (a one-case dataset, perhaps pretty-printed).
        return iter([_Record(where=str(path), loc="the record", data=document, encoded=encoded)])
    raise DatasetError(
        f'{path}: expected the SQuAD layout {{"data": [...]}}, a list of records, an object'
        f" of columns or a single record, got {_typename(document)}"
    )


def _list_records(path: Path, items: list[Any], encoded: bool) -> Iterator[_Record]:
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise DatasetError(f"{path}: [{i}]: expected an object, got {_typename(item)}")
        yield _Record(where=f"{path}: [{i}]", loc=f"[{i}]", data=item, encoded=encoded)


def _column_records(path: Path, columns: dict[str, list[Any]], encoded: bool) -> Iterator[_Record]:
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise DatasetError(f"{path}: columns have different lengths: {sorted(lengths)}")
    for index in range(lengths.pop()):
        data = {name: values[index] for name, values in columns.items()}
        yield _Record(where=f"{path}: row {index}", loc=f"row {index}", data=data, encoded=encoded)


def _container(path: Path, format: str | None) -> str:
    if format in ("jsonl", "csv", "parquet"):
        return format
    by_extension = _EXTENSIONS.get(path.suffix.lower())
    if by_extension is not None:
        return by_extension
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return "json"  # _read_text reports the problem
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.removeprefix(codecs.BOM_UTF8).lstrip()[:1] in (b"{", b"["):
        return "json"
    raise DatasetError(
        f"{path}: cannot tell the format from the file name; pass a format ({', '.join(FORMATS)})"
    )


def _records(path: Path, format: str | None, layout: str | None) -> Iterator[_Record]:
    container = _container(path, format)
    if container == "parquet":
        return _parquet_records(path)
    text = _read_text(path)
    if container == "csv":
        return _csv_records(path, text)
    if container == "json":
        records = _json_records(path, text, layout)
        if records is not None:
            return records
    return _jsonl_records(path, text, encoded=layout == "ragas")


# --------------------------------------------------------------------------- public API


def _layout_for(format: str | None) -> str | None:
    if format is None or format == "auto":
        return None
    if format not in FORMATS:
        raise DatasetError(
            f"unknown dataset format {format!r}; expected one of: {', '.join(FORMATS)}"
        )
    return {"squad": "squad_row", "ragas": "ragas"}.get(format)


def load_cases(path: Path, format: str | None = None) -> list[Case]:
    """Read the cases of a dataset file.

    ``format`` is one of :data:`FORMATS` or None to detect it from the extension and the
    keys (see the module docstring for the field mapping). Raises :class:`DatasetError`
    naming the file, the line (or record path, or Parquet row) and the problem; an empty
    file or duplicate ids are errors too.
    """
    path = Path(path)
    layout = _layout_for(format)
    container_format = format if format in ("jsonl", "csv", "parquet") else None
    cases: list[Case] = []
    first_seen: dict[str, str] = {}
    for index, rec in enumerate(_records(path, container_format, layout)):
        if layout is None:
            layout = _detect_layout(rec.data)
            if layout is None:
                keys = ", ".join(sorted(rec.data)) or "none"
                rec.fail(
                    f"cannot tell the dataset layout from the keys ({keys}): the project"
                    " layout needs 'references' ([] for unanswerable), SQuAD rows need"
                    " 'context' and 'answers', ragas rows need 'ground_truth' or 'reference'"
                )
        fields = _LAYOUTS[layout](rec)
        case_id = fields.id if fields.id is not None else f"{path.stem}-{index}"
        if case_id in first_seen:
            rec.fail(f"duplicate id {case_id!r} (first used at {first_seen[case_id]})")
        first_seen[case_id] = rec.loc
        cases.append(
            Case(
                id=case_id,
                question=fields.question,
                contexts=fields.contexts,
                references=fields.references,
                metadata=fields.metadata,
            )
        )
    if not cases:
        raise DatasetError(f"{path}: no cases in the file")
    return cases


def write_jsonl(cases: Iterable[Case], path: Path) -> None:
    """Write cases as the project's JSONL, atomically (temporary file, fsync, rename).

    Each case is validated as :func:`load_cases` would validate it on reading (ids
    non-empty and unique, at least one non-empty passage, metadata JSON-serialisable);
    empty and duplicate references are dropped.
    """
    path = Path(path)
    lines: list[str] = []
    first_seen: dict[str, int] = {}
    for i, case in enumerate(cases):
        if not isinstance(case, Case):
            raise DatasetError(f"{path}: case {i}: expected a Case, got {_typename(case)}")
        rec = _Record(
            where=f"{path}: case {i}", loc=f"case {i}", data=case.to_dict(), encoded=False
        )
        fields = _project_fields(rec)
        if fields.id is None:
            rec.fail("empty id")
        if fields.id in first_seen:
            rec.fail(f"duplicate id {fields.id!r} (first used by case {first_seen[fields.id]})")
        first_seen[fields.id] = i
        record = {
            "id": fields.id,
            "question": fields.question,
            "contexts": fields.contexts,
            "references": fields.references,
            "metadata": fields.metadata,
        }
        try:
            line = json.dumps(record, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            rec.fail(f"metadata is not JSON-serialisable: {exc}")
        # Valid JSON either way, but escaped these line breaks survive str.splitlines().
        lines.append(line.translate(_ESCAPE_LINE_BREAKS))
    _atomic_write(path, "".join(line + "\n" for line in lines))


def _atomic_write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise DatasetError(f"{path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def import_dataset(format: str, src: Path, dest: Path) -> int:
    """Convert ``src`` (``format``: one of :data:`FORMATS` or ``"auto"``) to project JSONL.

    Writes ``dest`` atomically and returns the number of cases written.
    """
    cases = load_cases(Path(src), None if format == "auto" else format)
    write_jsonl(cases, Path(dest))
    return len(cases)
