"""The tool-call checker's rules (harness.scoring.tool_calls), the structured scorer
(harness.scoring.structured) and the streamed tool-call assembly (providers/tools.py),
each expected value worked out by hand."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from harness.providers.tools import on_tool_deltas, tool_columns
from harness.scoring.structured import leaf_fields, parse_json_answer, score_structured
from harness.scoring.tool_calls import (
    check_call,
    normalize_text,
    parse_calls,
    score_tool_calls,
    values_equal,
)

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "book_room",
            "parameters": {
                "type": "object",
                "properties": {
                    "room": {"type": "string"},
                    "people": {"type": "integer", "minimum": 1},
                    "hours": {"type": "number"},
                    "size": {"type": "string", "enum": ["small", "large"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "projector": {"type": "boolean"},
                },
                "required": ["room", "people"],
            },
        },
    },
    {
        "type": "function",
        "function": {"name": "list_rooms", "parameters": {"type": "object", "properties": {}}},
    },
]


def made(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "arguments": json.dumps(args)}


def expect(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "arguments": args}


# ------------------------------------------------------------------ value equality


@pytest.mark.parametrize(
    ("expected", "actual", "schema", "equal"),
    [
        (3, 3.0, {"type": "number"}, True),  # JSON does not tell 3 from 3.0
        (3, 3.0, {"type": "integer"}, True),
        (0.1 + 0.2, 0.3, {"type": "number"}, False),  # no tolerance: 0.30000000000000004
        (1, True, {"type": "integer"}, False),  # a boolean is not a number
        (True, 1, {"type": "boolean"}, False),
        (3, "3", {"type": "integer"}, False),  # nor is a string
        ("New York", "  new   york ", {"type": "string"}, True),  # trim, collapse, case-fold
        ("A-1001", "A1001", {"type": "string"}, False),  # punctuation kept
        ("Straße", "STRASSE", {"type": "string"}, True),  # casefold, not lower
        ("large", "Large", {"type": "string", "enum": ["small", "large"]}, False),  # enum exact
        ("large", "large", {"enum": ["small", "large"]}, True),
        (["a", "b"], ["A", " b"], {"type": "array", "items": {"type": "string"}}, True),
        (["a", "b"], ["b", "a"], {"type": "array"}, False),  # order matters in arrays
        ({"x": 1}, {"x": 1.0}, {"type": "object"}, True),
        ({"x": 1}, {"x": 1, "y": 2}, {"type": "object"}, False),  # same keys
        (None, None, {}, True),
        (None, "", {}, False),
    ],
)
def test_values_equal(expected: Any, actual: Any, schema: dict[str, Any], equal: bool) -> None:
    assert values_equal(expected, actual, schema) is equal


def test_normalize_text() -> None:
    assert normalize_text("\t Two\n words ") == "two words"


# ------------------------------------------------------------------ well-formed calls


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        (made("book_room", room="A", people=2), None),
        ({"name": "list_rooms", "arguments": ""}, None),  # empty text is {}
        (made("cancel_room", room="A"), "hallucinated function 'cancel_room'"),
        ({"name": "book_room", "arguments": '{"room": "A", "people": 2'}, "are not JSON"),
        ({"name": "book_room", "arguments": "[1, 2]"}, "not a JSON object"),
        (made("book_room", room="A"), "missing required parameter 'people'"),
        (made("book_room", room="A", people=2, floor=3), "hallucinated parameter 'floor'"),
        (made("book_room", room="A", people=0), "people"),  # minimum 1
        (made("book_room", room="A", people=2, size="Large"), "size"),  # not an enum member
        (made("book_room", room="A", people="2"), "people"),  # wrong type
    ],
)
def test_check_call(call: dict[str, Any], problem: str | None) -> None:
    got = check_call(call, TOOLS)
    if problem is None:
        assert got is None
    else:
        assert got is not None and problem in got, got


# ------------------------------------------------------------------ scores


def test_exact_call_with_type_aware_normalisation() -> None:
    score = score_tool_calls(
        [made("book_room", room=" Blue  Room", people=4.0, hours=1)],
        TOOLS,
        [expect("book_room", room="blue room", people=4, hours=1.0)],
    )
    # 3 arguments made, all 3 right; 3 expected (none optional).
    assert (score.valid, score.exact, score.arg_precision, score.arg_recall) == (1, 1, 1, 1)
    assert score.error is None


def test_wrong_value_and_extra_argument() -> None:
    score = score_tool_calls(
        [made("book_room", room="Blue", people=5, projector=True)],
        TOOLS,
        [expect("book_room", room="Blue", people=4)],
    )
    # Made 3 arguments: room right, people wrong, projector not expected: 1/3 precise;
    # expected 2, 1 right: recall 1/2. Well-formed, not exact.
    assert (score.valid, score.exact) == (1, 0)
    assert score.arg_precision == pytest.approx(1 / 3)
    assert score.arg_recall == pytest.approx(1 / 2)
    assert score.error is not None and "people=5" in score.error


def test_optional_and_one_of_matchers() -> None:
    expected = [
        expect(
            "book_room",
            room={"$one_of": ["Blue", "Blue room"]},
            people=2,
            size={"$one_of": ["small"], "$optional": True},
            tags={"$any": True, "$optional": True},
        )
    ]
    # Optional ones left out: exact; 2 made, 2 right; recall counts the 2 non-optional.
    left_out = score_tool_calls([made("book_room", room="blue room", people=2)], TOOLS, expected)
    assert (left_out.exact, left_out.arg_precision, left_out.arg_recall) == (1, 1, 1)
    # Optional given and right, any tags: exact; 4 made, 4 right; recall still 2/2.
    given = score_tool_calls(
        [made("book_room", room="Blue", people=2, size="small", tags=["x"])], TOOLS, expected
    )
    assert (given.exact, given.arg_precision, given.arg_recall) == (1, 1, 1)
    # Optional given and wrong: not exact; 3 made, 2 right.
    wrong = score_tool_calls(
        [made("book_room", room="Blue", people=2, size="large")], TOOLS, expected
    )
    assert wrong.exact == 0 and wrong.arg_precision == pytest.approx(2 / 3)
    assert wrong.arg_recall == 1


def test_parallel_calls_any_order_and_pairing() -> None:
    expected = [expect("book_room", room="A", people=1), expect("book_room", room="B", people=2)]
    swapped = score_tool_calls(
        [made("book_room", room="B", people=2), made("book_room", room="A", people=1)],
        TOOLS,
        expected,
    )
    assert (swapped.exact, swapped.arg_precision, swapped.arg_recall) == (1, 1, 1)
    # One call of two, which best pairs with room B (2 of 2 arguments right):
    # precision 2/2, recall 2 of 4 expected.
    half = score_tool_calls([made("book_room", room="B", people=2)], TOOLS, expected)
    assert (half.exact, half.arg_precision, half.arg_recall) == (0, 1, 0.5)
    assert half.error == "expected 2 call(s), got 1"
    # Mixed-up pairing: (room A, people 2) and (room B, people 1). Each pairing gets 2 of
    # 4 arguments right: precision 2/4, recall 2/4.
    mixed = score_tool_calls(
        [made("book_room", room="A", people=2), made("book_room", room="B", people=1)],
        TOOLS,
        expected,
    )
    assert (mixed.exact, mixed.arg_precision, mixed.arg_recall) == (0, 0.5, 0.5)


def test_duplicate_call_is_not_exact() -> None:
    expected = [expect("book_room", room="A", people=1)]
    twice = score_tool_calls(
        [made("book_room", room="A", people=1), made("book_room", room="A", people=1)],
        TOOLS,
        expected,
    )
    # Valid calls; one too many: not exact. 4 made, 2 right (the pair); recall 2/2.
    assert (twice.valid, twice.exact, twice.arg_precision, twice.arg_recall) == (1, 0, 0.5, 1)


def test_no_call_expected() -> None:
    none = score_tool_calls([], TOOLS, [])
    assert (none.valid, none.exact, none.arg_precision, none.arg_recall) == (1, 1, None, None)
    # A well-formed call where none was wanted: valid but not exact; its 2 arguments wrong.
    called = score_tool_calls([made("book_room", room="A", people=1)], TOOLS, [])
    assert (called.valid, called.exact, called.arg_precision) == (1, 0, 0.0)
    assert called.error == "no call expected, got 1"
    # A call without arguments where none was wanted: no precision to speak of.
    bare = score_tool_calls([{"name": "list_rooms", "arguments": ""}], TOOLS, [])
    assert (bare.exact, bare.arg_precision) == (0, None)


def test_missed_call_and_hallucinated_function() -> None:
    expected = [expect("list_rooms")]
    missed = score_tool_calls([], TOOLS, expected)
    # Nothing made: not valid (a call was expected), no precision, and no expected
    # arguments to recall.
    assert (missed.valid, missed.exact, missed.arg_precision, missed.arg_recall) == (
        0,
        0,
        None,
        None,
    )
    bad = score_tool_calls([made("list_all_rooms")], TOOLS, expected)
    assert (bad.valid, bad.exact) == (0, 0)
    assert bad.error is not None and "hallucinated function" in bad.error
    ok = score_tool_calls([{"name": "list_rooms", "arguments": "{}"}], TOOLS, expected)
    assert (ok.valid, ok.exact) == (1, 1)


def test_invalid_arguments_are_never_exact() -> None:
    # Right values but an extra undeclared parameter: not well-formed, so not exact.
    score = score_tool_calls(
        [made("book_room", room="A", people=1, floor=2)],
        TOOLS,
        [expect("book_room", room="A", people=1)],
    )
    assert (score.valid, score.exact) == (0, 0)
    assert score.arg_precision == pytest.approx(2 / 3)


def test_parse_calls() -> None:
    text = json.dumps([{"id": "c0", "name": "list_rooms", "arguments": ""}])
    assert parse_calls(text) == [{"name": "list_rooms", "arguments": ""}]
    assert parse_calls(None) == []
    with pytest.raises(ValueError):
        parse_calls('{"name": "x"}')


# ------------------------------------------------------------------ stream assembly


def test_tool_deltas_assemble_interleaved_calls() -> None:
    calls = None
    # OpenAI's shape: a name fragment per call, then argument fragments by index,
    # here interleaved as parallel calls may be.
    for now, fragments in [
        (0.10, [{"index": 0, "id": "a", "function": {"name": "get", "arguments": ""}}]),
        (0.11, [{"index": 1, "id": "b", "function": {"name": "put", "arguments": ""}}]),
        (0.12, [{"index": 0, "function": {"arguments": '{"k": '}}]),
        (0.13, [{"index": 1, "function": {"arguments": "{}"}}]),
        (0.14, [{"index": 0, "function": {"arguments": "1}"}}]),
    ]:
        calls = on_tool_deltas(calls, fragments, now)
    assert calls is not None
    assert calls.first_s == 0.10 and calls.chunks == 5
    columns = tool_columns(calls)
    assert json.loads(columns["tool_calls"]) == [
        {"id": "a", "name": "get", "arguments": '{"k": 1}'},
        {"id": "b", "name": "put", "arguments": "{}"},
    ]
    assert columns["ttft_tool_s"] == 0.10


def test_tool_deltas_from_objects_and_without_index() -> None:
    # litellm hands objects with attributes; a server may omit the index of a single call.
    first = SimpleNamespace(index=None, id="x", function=SimpleNamespace(name="f", arguments=None))
    rest = SimpleNamespace(index=None, id=None, function=SimpleNamespace(name=None, arguments="{}"))
    calls = on_tool_deltas(None, [first], 1.0)
    calls = on_tool_deltas(calls, [rest], 2.0)
    assert calls.as_list() == [{"id": "x", "name": "f", "arguments": "{}"}]
    # An id-only fragment is no token: the first tool-call token is the name.
    empty = on_tool_deltas(None, [{"index": 0, "id": "y"}], 0.5)
    assert empty.first_s is None and empty.chunks == 0
    with pytest.raises(TypeError):
        on_tool_deltas(None, [{"index": 0, "function": {"name": 3}}], 0.0)
    assert tool_columns(None) == {"tool_calls": None, "ttft_tool_s": None}


# ------------------------------------------------------------------ structured


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "plan": {"enum": ["Pro", "Free"]},
        "seats": {"type": "integer"},
        "lines": {
            "type": "array",
            "items": {"type": "object", "properties": {"sku": {"type": "string"}}},
        },
    },
    "required": ["name"],
    "additionalProperties": False,
}
EXPECTED = {"name": "Acme GmbH", "plan": "Pro", "seats": 12, "lines": [{"sku": "a"}, {"sku": "b"}]}


def test_leaf_fields_walk_objects_and_arrays() -> None:
    paths = [path for path, _, _ in leaf_fields(EXPECTED, SCHEMA)]
    assert paths == [("name",), ("plan",), ("seats",), ("lines", 0, "sku"), ("lines", 1, "sku")]
    assert [p for p, _, _ in leaf_fields({"tags": [], "meta": {}})] == [("tags",), ("meta",)]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ('{"a": 1}', True),
        ('  {"a": 1}\n', True),
        ('```json\n{"a": 1}\n```', True),
        ('```\n{"a": 1}\n```', True),
        ('Here it is: {"a": 1}', False),
        ('{"a": 1', False),
        ("", False),
    ],
)
def test_parse_json_answer(text: str, ok: bool) -> None:
    assert parse_json_answer(text)[0] is ok


def test_structured_scores() -> None:
    answer = {
        "name": " acme  gmbh",
        "plan": "pro",  # enum: exact only, wrong
        "seats": 12.0,  # 12 == 12.0
        "lines": [{"sku": "A"}],  # lines[1] missing
    }
    scored = score_structured(json.dumps(answer), SCHEMA, EXPECTED)
    # Leaves right: name, seats, lines[0].sku = 3 of 5. "pro" is not in the enum: the
    # schema fails too.
    assert scored["json_valid"] == 1.0
    assert scored["schema_valid"] == 0.0
    assert scored["field_accuracy"] == pytest.approx(3 / 5)
    assert scored["structured_error"].startswith("schema: plan:")
    perfect = score_structured(json.dumps(EXPECTED), SCHEMA, EXPECTED)
    assert (perfect["schema_valid"], perfect["field_accuracy"]) == (1.0, 1.0)
    assert perfect["structured_error"] is None
    extra = score_structured(json.dumps({**EXPECTED, "vat": 1}), SCHEMA, EXPECTED)
    # An extra field breaks additionalProperties, but costs no expected field.
    assert (extra["schema_valid"], extra["field_accuracy"]) == (0.0, 1.0)
    broken = score_structured('{"name": "Acme"', SCHEMA, EXPECTED)
    assert (broken["json_valid"], broken["schema_valid"], broken["field_accuracy"]) == (0, 0, 0)


def test_legacy_function_call_fragments_with_repeated_name() -> None:
    # llama-cpp-python streams delta.function_call (one object), the name in every chunk.
    calls = None
    for now, piece in [(0.2, "{ "), (0.3, '"id": '), (0.4, '"A" }')]:
        calls = on_tool_deltas(calls, {"name": "get_invoice", "arguments": piece}, now)
    assert calls is not None
    assert calls.as_list() == [{"id": None, "name": "get_invoice", "arguments": '{ "id": "A" }'}]
    assert (calls.first_s, calls.chunks) == (0.2, 3)
    # litellm's FunctionCall object has the same shape as attributes.
    obj = on_tool_deltas(None, SimpleNamespace(name="f", arguments="{}"), 1.0)
    assert obj.as_list() == [{"id": None, "name": "f", "arguments": "{}"}]
