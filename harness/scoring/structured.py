"""Scoring structured (JSON) answers against a JSON Schema and an expected object.

* ``json_valid``: the answer is one JSON value, after trimming whitespace and one
  surrounding Markdown code fence (```` ```json ... ``` ````), which instruction-following
  models add when the schema is only in the prompt; any other text around it fails;
* ``schema_valid``: that value validates against the schema (``jsonschema``, the
  schema's own draft); 0 when not JSON;
* ``field_accuracy``: the share of the expected object's leaf fields that the answer has,
  equal under :func:`harness.scoring.tool_calls.values_equal` (numbers ``3 == 3.0``,
  strings trimmed, whitespace-collapsed and case-folded, enum members exact). Leaves are
  found by walking objects key by key and arrays index by index (``items[1].sku``): a
  missing or extra array element costs the fields of that element; an empty object or
  array is one leaf. 0 when not JSON. Fields the answer adds beyond the expected ones
  are not counted here (``schema_valid`` judges them, e.g. ``additionalProperties``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from harness.scoring.tool_calls import values_equal

__all__ = ["leaf_fields", "parse_json_answer", "score_structured"]

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*[ \t]*\n(.*)\n[ \t]*```$", re.S)
_MISSING = object()


def parse_json_answer(text: str | None) -> tuple[bool, Any]:
    """(is JSON, the value) of an answer (see the module docstring for the fence rule)."""
    body = (text or "").strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        return True, json.loads(body)
    except ValueError:
        return False, None


def _sub_schema(schema: Any, key: str | int) -> Mapping[str, Any]:
    if not isinstance(schema, Mapping):
        return {}
    if isinstance(key, int):
        items = schema.get("items")
        return items if isinstance(items, Mapping) else {}
    props = schema.get("properties") or {}
    sub = props.get(key) if isinstance(props, Mapping) else None
    return sub if isinstance(sub, Mapping) else {}


def leaf_fields(
    expected: Any, schema: Any = None, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], Any, Mapping[str, Any]]]:
    """(path, expected value, its schema) of every leaf field of ``expected``."""
    schema = schema if isinstance(schema, Mapping) else {}
    if isinstance(expected, dict) and expected:
        for key, value in expected.items():
            yield from leaf_fields(value, _sub_schema(schema, key), (*path, key))
    elif isinstance(expected, list) and expected:
        for index, value in enumerate(expected):
            yield from leaf_fields(value, _sub_schema(schema, index), (*path, index))
    else:
        yield path, expected, schema


def _at(value: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        if isinstance(key, int):
            if not isinstance(value, list) or key >= len(value):
                return _MISSING
        elif not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def score_structured(text: str | None, schema: Mapping[str, Any], expected: Any) -> dict[str, Any]:
    """``json_valid``, ``schema_valid``, ``field_accuracy`` and ``structured_error``."""
    import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extra

    ok, value = parse_json_answer(text)
    if not ok:
        return {
            "json_valid": 0.0,
            "schema_valid": 0.0,
            "field_accuracy": 0.0,
            "structured_error": "the answer is not JSON",
        }
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = next(iter(validator.iter_errors(value)), None)
    leaves = list(leaf_fields(expected, schema))
    equal = 0
    first_wrong: str | None = None
    for path, want, sub in leaves:
        got = _at(value, path)
        if got is not _MISSING and values_equal(want, got, sub):
            equal += 1
        elif first_wrong is None:
            where = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path) or "."
            shown = "missing" if got is _MISSING else repr(got)[:60]
            first_wrong = f"{where.lstrip('.') or '.'}: {shown}, expected {want!r}"[:200]
    problem = None
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "the answer"
        problem = f"schema: {where}: {error.message[:160]}"
    return {
        "json_valid": 1.0,
        "schema_valid": 0.0 if error is not None else 1.0,
        "field_accuracy": equal / len(leaves) if leaves else 1.0,
        "structured_error": problem or first_wrong,
    }
