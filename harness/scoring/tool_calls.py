"""Scoring tool calls against expected calls, after BFCL's AST checker (our own code).

The rules (what ``tool_valid``, ``tool_exact`` and the argument precision/recall mean):

**Well-formed call** (every rule must hold):

* it names a declared tool (a call to any other name is a *hallucinated function*);
* its arguments are JSON text of an object (an empty text counts as ``{}``);
* every parameter the tool's schema lists in ``required`` is present;
* no parameter the tool's schema does not declare in ``properties`` (a hallucinated
  parameter), unlike plain JSON Schema, where undeclared properties are allowed;
* the arguments validate against the tool's ``parameters`` schema (``jsonschema``:
  types, enums, bounds).

``tool_valid`` is 1 when the answer made calls and every one is well-formed, or made no
call and none was expected; else 0 (so a well-formed call where none was expected is
valid, but not exact).

**Exact** (``tool_exact`` = 1): as many calls as expected, and each expected call pairs
with a distinct made call (order does not matter: parallel calls may come in any order,
as in BFCL's parallel checker) that is well-formed, has the expected name, and whose
arguments match: every expected argument is present and equal (unless marked
optional), and no argument is present that the expected call does not name. A case
expecting no call is exact when no call was made.

**Equal values**, type-aware, from the parameter's declared schema:

* numbers: ``3 == 3.0`` (JSON does not tell integers from floats); a boolean is never a
  number (``true != 1``) and a string is never a number (``"3" != 3``);
* strings: compared after trimming, collapsing runs of whitespace to one space and
  case-folding (``"  New   York" == "new york"``); punctuation is kept (``"A-1001" !=
  "A1001"``: identifiers differ by punctuation);
* enum members (the schema has ``enum``): exactly, no case folding (an API that
  validates its enum would refuse ``"High"`` for ``"high"``; such a value also makes the
  call not well-formed);
* arrays: same length, element by element (order matters) with the ``items`` schema;
* objects: the same keys, value by value with the ``properties`` schemas;
* ``null`` equals only ``null``.

An expected argument is a JSON value, or a matcher object: ``{"$one_of": [v1, v2]}``
(any of these values), ``{"$any": true}`` (any value), either with ``"$optional": true``
(the argument may be left out; BFCL's ``""`` among the possible answers; alone,
``{"$optional": true}`` means it must be left out). The values of an expected object may be
matchers too (``{"budget": {"min": {"$one_of": [1, 2]}}}``, from BFCL's nested answers).

**Argument precision and recall**: the made and expected calls are paired (same name,
most matching arguments); an argument is *correct* when its paired expected call has it
and the values are equal. precision = correct / arguments in all made calls (None
without any); recall = correct non-optional / non-optional expected arguments (None
when none are expected).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ToolScore",
    "arguments_match",
    "check_call",
    "normalize_text",
    "parse_calls",
    "score_tool_calls",
    "values_equal",
]

_MATCHER_KEYS = frozenset({"$one_of", "$any", "$optional"})


@dataclass(frozen=True)
class ToolScore:
    """The scores of one answer's tool calls (see the module docstring)."""

    valid: float
    exact: float
    arg_precision: float | None
    arg_recall: float | None
    error: str | None

    def columns(self) -> dict[str, Any]:
        """As row columns."""
        return {
            "tool_valid": self.valid,
            "tool_exact": self.exact,
            "tool_arg_precision": self.arg_precision,
            "tool_arg_recall": self.arg_recall,
            "tool_error": self.error,
        }


def normalize_text(text: str) -> str:
    """The string rule: trimmed, whitespace runs collapsed to one space, case-folded."""
    return " ".join(text.split()).casefold()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def values_equal(expected: Any, actual: Any, schema: Mapping[str, Any] | None = None) -> bool:
    """Whether ``actual`` equals ``expected`` under the type-aware rules (module docstring)."""
    schema = schema if isinstance(schema, Mapping) else {}
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if _is_number(expected) or _is_number(actual):
        if not (_is_number(expected) and _is_number(actual)):
            return False
        if not (math.isfinite(expected) and math.isfinite(actual)):
            return bool(expected == actual)
        return float(expected) == float(actual)
    if isinstance(expected, str) or isinstance(actual, str):
        if not (isinstance(expected, str) and isinstance(actual, str)):
            return False
        if "enum" in schema:
            return expected == actual
        return normalize_text(expected) == normalize_text(actual)
    if isinstance(expected, list) or isinstance(actual, list):
        if not (isinstance(expected, list) and isinstance(actual, list)):
            return False
        items = schema.get("items")
        return len(expected) == len(actual) and all(
            values_equal(e, a, items) for e, a in zip(expected, actual, strict=True)
        )
    if isinstance(expected, dict) and isinstance(actual, dict):
        if expected.keys() != actual.keys():
            return False
        props = schema.get("properties") or {}
        return all(values_equal(v, actual[k], props.get(k)) for k, v in expected.items())
    return bool(expected == actual)


def _is_matcher(spec: Any) -> bool:
    return isinstance(spec, dict) and bool(spec) and spec.keys() <= _MATCHER_KEYS


def _has_matcher(spec: Any) -> bool:
    if isinstance(spec, dict):
        return _is_matcher(spec) or any(_has_matcher(v) for v in spec.values())
    return isinstance(spec, list) and any(_has_matcher(v) for v in spec)


def _optional(spec: Any) -> bool:
    return _is_matcher(spec) and spec.get("$optional") is True


def _spec_matches(spec: Any, value: Any, schema: Mapping[str, Any] | None) -> bool:
    """Whether a present argument ``value`` satisfies the expected ``spec``; matchers may
    also stand for the values of an expected object's keys (BFCL's nested answers)."""
    if isinstance(spec, dict) and not _is_matcher(spec) and _has_matcher(spec):
        if not isinstance(value, dict):
            return False
        props = (schema or {}).get("properties") or {}
        return (
            value.keys() <= spec.keys()
            and all(k in value for k, v in spec.items() if not _optional(v))
            and all(_spec_matches(spec[k], v, props.get(k)) for k, v in value.items())
        )
    if not _is_matcher(spec):
        return values_equal(spec, value, schema)
    if spec.get("$any") is True:
        return True
    if "$one_of" in spec:
        return any(values_equal(option, value, schema) for option in spec["$one_of"])
    return False  # {"$optional": true} alone: the argument must be left out


def parse_calls(text: str | None) -> list[dict[str, Any]]:
    """The row's ``tool_calls`` JSON as a list of ``{"name", "arguments"}`` (raw text)."""
    if not text:
        return []
    calls = json.loads(text)
    if not isinstance(calls, list):
        raise ValueError("tool_calls is not a JSON list")
    return [
        {"name": str(c.get("name") or ""), "arguments": c.get("arguments") or ""}
        for c in calls
        if isinstance(c, dict)
    ]


def _parameters(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    function = tool.get("function", tool)
    params = function.get("parameters") if isinstance(function, Mapping) else None
    return params if isinstance(params, Mapping) else {"type": "object", "properties": {}}


def _tool_name(tool: Mapping[str, Any]) -> str:
    function = tool.get("function", tool)
    return str(function.get("name", "")) if isinstance(function, Mapping) else ""


def _arguments(call: Mapping[str, Any]) -> dict[str, Any] | str:
    """The parsed arguments, or a problem (text)."""
    raw = call.get("arguments")
    if isinstance(raw, dict):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    try:
        parsed = json.loads(raw)
    except (TypeError, ValueError):
        return f"the arguments of {call.get('name')!r} are not JSON: {str(raw)[:80]!r}"
    if not isinstance(parsed, dict):
        return f"the arguments of {call.get('name')!r} are not a JSON object"
    return parsed


@functools.lru_cache(maxsize=256)
def _validator(schema_text: str) -> Any:
    import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extra

    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def check_call(call: Mapping[str, Any], tools: Sequence[Mapping[str, Any]]) -> str | None:
    """Why ``call`` is not well-formed for ``tools``, or None when it is (module docstring)."""
    name = call.get("name")
    declared = {_tool_name(t): t for t in tools}
    if name not in declared:
        return f"hallucinated function {name!r} (declared: {', '.join(sorted(declared))})"
    args = _arguments(call)
    if isinstance(args, str):
        return args
    params = _parameters(declared[name])
    props = params.get("properties") or {}
    for required in params.get("required") or ():
        if required not in args:
            return f"{name}: missing required parameter {required!r}"
    for key in args:
        if key not in props:
            return f"{name}: hallucinated parameter {key!r}"
    validator = _validator(json.dumps(params, sort_keys=True))
    error = next(iter(validator.iter_errors(args)), None)
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "arguments"
        return f"{name}: {where}: {error.message[:160]}"
    return None


def arguments_match(
    expected: Mapping[str, Any], args: Mapping[str, Any], schema: Mapping[str, Any]
) -> tuple[int, int, str | None]:
    """(correct arguments, correct non-optional ones, first mismatch or None) of ``args``
    against an expected call's ``arguments``; the call is exact when the mismatch is None."""
    props = schema.get("properties") or {}
    correct = correct_required = 0
    problem: str | None = None
    for key, value in args.items():
        if key not in expected:
            problem = problem or f"unexpected argument {key!r}"
            continue
        if _spec_matches(expected[key], value, props.get(key)):
            correct += 1
            correct_required += not _optional(expected[key])
        else:
            problem = problem or f"{key}={value!r}, expected {expected[key]!r}"
    for key, spec in expected.items():
        if key not in args and not _optional(spec):
            problem = problem or f"missing argument {key!r}"
    return correct, correct_required, problem


def _best_pairing(weights: list[list[int | None]]) -> tuple[int, list[tuple[int, int]]]:
    """Pair expected calls (rows) with made calls (columns), each at most once,
    maximising the summed weight; None forbids a pair. Exact search over subsets of
    made calls (answers have a handful of calls)."""
    n_made = len(weights[0]) if weights else 0

    @functools.cache
    def best(row: int, used: int) -> tuple[int, tuple[tuple[int, int], ...]]:
        if row == len(weights):
            return 0, ()
        top, pairs = best(row + 1, used)  # this expected call unpaired
        for col in range(n_made):
            weight = weights[row][col]
            if weight is None or used >> col & 1:
                continue
            rest, rest_pairs = best(row + 1, used | 1 << col)
            if weight + rest > top:
                top, pairs = weight + rest, ((row, col), *rest_pairs)
        return top, pairs

    total, pairs = best(0, 0)
    return total, list(pairs)


def score_tool_calls(
    calls: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]],
    expected: Sequence[Mapping[str, Any]],
) -> ToolScore:
    """Score made ``calls`` (``{"name", "arguments"}``) against ``expected`` calls
    (``{"name", "arguments": {param: value or matcher}}``; empty: no call expected)."""
    if len(calls) > 16:
        calls = calls[:16]  # the exact pairing search is exponential in made calls
    problems = [check_call(c, tools) for c in calls]
    parsed = [_arguments(c) for c in calls]
    formed = all(p is None for p in problems)
    made_args = sum(len(a) for a in parsed if isinstance(a, dict))
    if not expected:
        return ToolScore(
            valid=1.0 if formed else 0.0,
            exact=1.0 if not calls else 0.0,
            arg_precision=0.0 if made_args else None,
            arg_recall=None,
            error=None if not calls else f"no call expected, got {len(calls)}",
        )
    schemas = {_tool_name(t): _parameters(t) for t in tools}
    required_total = sum(
        sum(not _optional(s) for s in (e.get("arguments") or {}).values()) for e in expected
    )
    # One pairing for precision/recall (most correct arguments), one for exactness.
    counts: list[list[int | None]] = []
    exact: list[list[int | None]] = []
    mismatch: str | None = None
    for e in expected:
        row_counts: list[int | None] = []
        row_exact: list[int | None] = []
        for call, args, problem in zip(calls, parsed, problems, strict=True):
            if call.get("name") != e["name"] or not isinstance(args, dict):
                row_counts.append(None)
                row_exact.append(None)
                continue
            correct, correct_required, why = arguments_match(
                e.get("arguments") or {}, args, schemas.get(e["name"], {})
            )
            row_counts.append(correct * (required_total + 1) + correct_required)
            ok = why is None and problem is None
            row_exact.append(1 if ok else None)
            if not ok:
                mismatch = mismatch or f"{e['name']}: {problem or why}"
        counts.append(row_counts)
        exact.append(row_exact)
    # Weights count correct arguments in base (required_total + 1): the high digit is
    # every correct argument, the low one the non-optional ones (their sum over the
    # pairs is at most required_total, so it never carries).
    weight, _ = _best_pairing(counts)
    correct_all, correct_required = divmod(weight, required_total + 1)
    n_exact, _ = _best_pairing(exact)
    is_exact = len(calls) == len(expected) and n_exact == len(expected)
    error = next((p for p in problems if p is not None), None)
    if not calls:
        error = f"expected {len(expected)} call(s), got none"
    elif not is_exact and error is None:
        if len(calls) != len(expected):
            error = f"expected {len(expected)} call(s), got {len(calls)}"
        else:
            names = sorted(str(e["name"]) for e in expected)
            got = sorted(str(c.get("name")) for c in calls)
            error = mismatch if names == got and mismatch else f"expected {names}, got {got}"
    return ToolScore(
        valid=1.0 if calls and formed else 0.0,
        exact=1.0 if is_exact else 0.0,
        arg_precision=correct_all / made_args if made_args else None,
        arg_recall=correct_required / required_total if required_total else None,
        error=error,
    )
