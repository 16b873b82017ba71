"""Datasets of the ``tool_call`` and ``structured`` suites: load, validate, import BFCL.

Tool cases (JSONL, one case per line)::

    {"id": "order-status-1",
     "messages": [{"role": "user", "content": "Where is order A-1001?"}],
     "tools": ["get_order"],
     "expected": [{"name": "get_order", "arguments": {"order_id": "A-1001"}}]}

* ``messages`` (or ``question``: one user message's text);
* ``tools``: tool definitions in OpenAI's function format (``{"type": "function",
  "function": {"name", "description", "parameters": JSON Schema}}``), or names of tools
  in the suite's ``tools_file`` (a JSON list of definitions shared by the cases); left
  out: every tool of the ``tools_file``;
* ``expected``: the expected calls, any order; ``[]`` means no tool should be called.
  Argument values are JSON values or matchers (``{"$one_of": [...]}``, ``{"$any":
  true}``, ``"$optional": true``), see :mod:`harness.scoring.tool_calls`;
* ``metadata``: free (e.g. ``category``).

Extraction cases (JSONL)::

    {"id": "invoice-1", "prompt": "Extract ... from: ...",
     "schema": {"type": "object", ...}, "expected": {...}}

Errors name the file and line. :func:`import_bfcl` converts the Berkeley Function
Calling Leaderboard's JSON (question file + ``possible_answer`` file) into tool cases.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.suites.datasets import DatasetError, _atomic_write

__all__ = [
    "ExtractionCase",
    "ToolCase",
    "import_bfcl",
    "load_extraction_cases",
    "load_tool_cases",
    "load_tools_file",
]

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's rule for function names
_MATCHER_KEYS = frozenset({"$one_of", "$any", "$optional"})


@dataclass(frozen=True)
class ToolCase:
    """One conversation, the tools it may call, and the calls expected (none: ``[]``)."""

    id: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    expected: list[dict[str, Any]]
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "messages": self.messages,
            "tools": self.tools,
            "expected": self.expected,
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class ExtractionCase:
    """One prompt, the JSON Schema its answer must follow, and the expected object."""

    id: str
    prompt: str
    schema: dict[str, Any]
    expected: Any
    metadata: dict[str, Any] = field(default_factory=dict)


def _lines(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``file:line``, object) of every non-blank line of a JSONL file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{where}: not JSON: {exc}") from None
        if not isinstance(record, dict):
            raise DatasetError(f"{where}: a case is a JSON object")
        yield where, record


def _check_schema(where: str, schema: Any, what: str) -> None:
    import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extra

    if not isinstance(schema, dict):
        raise DatasetError(f"{where}: {what} is not a JSON Schema object")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise DatasetError(f"{where}: {what} is not a valid JSON Schema: {exc.message}") from None


def _check_tool(where: str, tool: Any) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        raise DatasetError(f"{where}: a tool is {{'type': 'function', 'function': {{...}}}}")
    function = tool.get("function")
    if not isinstance(function, dict):
        raise DatasetError(f"{where}: tool without a 'function' object")
    name = function.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise DatasetError(f"{where}: tool name {name!r} must match {_TOOL_NAME.pattern}")
    params = function.get("parameters", {"type": "object", "properties": {}})
    _check_schema(where, params, f"the parameters of {name!r}")
    if params.get("type") != "object":
        raise DatasetError(f"{where}: the parameters of {name!r} must be of type 'object'")
    return {"type": "function", "function": {**function, "parameters": params}}


def load_tools_file(path: Path) -> dict[str, dict[str, Any]]:
    """Tool name → definition, from a JSON list of OpenAI tool definitions."""
    try:
        tools = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read a JSON list of tools: {exc}") from None
    if not isinstance(tools, list) or not tools:
        raise DatasetError(f"{path}: a tools file is a non-empty JSON list of tools")
    out: dict[str, dict[str, Any]] = {}
    for i, tool in enumerate(tools):
        checked = _check_tool(f"{path}: tool {i}", tool)
        name = checked["function"]["name"]
        if name in out:
            raise DatasetError(f"{path}: tool {i}: duplicate tool name {name!r}")
        out[name] = checked
    return out


def _has_matcher(value: Any) -> bool:
    if isinstance(value, dict):
        return (bool(value) and value.keys() <= _MATCHER_KEYS) or any(
            _has_matcher(v) for v in value.values()
        )
    return isinstance(value, list) and any(_has_matcher(v) for v in value)


def _check_expected(
    where: str, expected: Any, tools: list[dict[str, Any]], values: bool = True
) -> None:
    """Expected calls name the case's tools and their parameters; with ``values``, every
    expected value (without nested matchers) fits its parameter's schema."""
    import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extra

    if not isinstance(expected, list):
        raise DatasetError(f"{where}: 'expected' is a list of calls ([] for no call)")
    by_name = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    for i, call in enumerate(expected):
        at = f"{where}: expected[{i}]"
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise DatasetError(f"{at}: a call is {{'name': ..., 'arguments': {{...}}}}")
        if call["name"] not in by_name:
            raise DatasetError(f"{at}: {call['name']!r} is not one of the case's tools")
        args = call.get("arguments", {})
        if not isinstance(args, dict):
            raise DatasetError(f"{at}: 'arguments' is an object")
        props = by_name[call["name"]].get("properties") or {}
        for key, value in args.items():
            if key not in props:
                raise DatasetError(f"{at}: {call['name']!r} has no parameter {key!r}")
            matcher = isinstance(value, dict) and value and value.keys() <= _MATCHER_KEYS
            options = value.get("$one_of", []) if matcher else [value]
            for option in options if values else ():
                if _has_matcher(option):
                    continue
                try:
                    jsonschema.validate(option, props[key])
                except jsonschema.ValidationError as exc:
                    raise DatasetError(
                        f"{at}: {key}={option!r} does not fit its schema: {exc.message}"
                    ) from None


def _messages(where: str, record: Mapping[str, Any]) -> list[dict[str, Any]]:
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            raise DatasetError(f"{where}: 'messages' is a non-empty list")
        for m in messages:
            if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                raise DatasetError(f"{where}: each message is an object with a 'role'")
        return messages
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DatasetError(f"{where}: give 'messages' or a non-empty 'question'")
    return [{"role": "user", "content": question}]


def load_tool_cases(
    path: Path, catalog: Mapping[str, dict[str, Any]] | None = None
) -> list[ToolCase]:
    """The tool cases of a JSONL file (tools by name from ``catalog``, see module docstring)."""
    cases: list[ToolCase] = []
    seen: set[str] = set()
    for where, record in _lines(Path(path)):
        unknown = record.keys() - {"id", "messages", "question", "tools", "expected", "metadata"}
        if unknown:
            raise DatasetError(f"{where}: unknown keys {sorted(unknown)}")
        case_id = str(record.get("id") or f"{Path(path).stem}-{len(cases)}")
        if case_id in seen:
            raise DatasetError(f"{where}: duplicate id {case_id!r}")
        seen.add(case_id)
        raw_tools = record.get("tools")
        if raw_tools is None:
            if not catalog:
                raise DatasetError(f"{where}: no 'tools', and the suite has no tools_file")
            tools = list(catalog.values())
        elif not isinstance(raw_tools, list) or not raw_tools:
            raise DatasetError(f"{where}: 'tools' is a non-empty list")
        else:
            tools = []
            for tool in raw_tools:
                if isinstance(tool, str):
                    if not catalog or tool not in catalog:
                        raise DatasetError(f"{where}: tool {tool!r} is not in the tools_file")
                    tools.append(catalog[tool])
                else:
                    tools.append(_check_tool(where, tool))
        names = [t["function"]["name"] for t in tools]
        if len(set(names)) != len(names):
            raise DatasetError(f"{where}: duplicate tool names in {names}")
        if "expected" not in record:
            raise DatasetError(f"{where}: no 'expected' calls ([] when no tool should be called)")
        metadata = record.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise DatasetError(f"{where}: 'metadata' is an object")
        # BFCL's answers do not always fit their own schemas (None for a string, a value
        # outside the enum): imported cases are checked for names only.
        _check_expected(where, record["expected"], tools, values=metadata.get("source") != "bfcl")
        cases.append(
            ToolCase(case_id, _messages(where, record), tools, record["expected"], metadata)
        )
    if not cases:
        raise DatasetError(f"{path}: no cases in the file")
    return cases


def load_extraction_cases(path: Path) -> list[ExtractionCase]:
    """The extraction cases of a JSONL file; each expected object must fit its schema."""
    import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extra

    cases: list[ExtractionCase] = []
    seen: set[str] = set()
    for where, record in _lines(Path(path)):
        unknown = record.keys() - {"id", "prompt", "schema", "expected", "metadata"}
        if unknown:
            raise DatasetError(f"{where}: unknown keys {sorted(unknown)}")
        case_id = str(record.get("id") or f"{Path(path).stem}-{len(cases)}")
        if case_id in seen:
            raise DatasetError(f"{where}: duplicate id {case_id!r}")
        seen.add(case_id)
        prompt = record.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise DatasetError(f"{where}: 'prompt' is a non-empty string")
        schema = record.get("schema")
        _check_schema(where, schema, "'schema'")
        if "expected" not in record:
            raise DatasetError(f"{where}: no 'expected' object")
        try:
            jsonschema.validate(record["expected"], schema)
        except jsonschema.ValidationError as exc:
            raise DatasetError(
                f"{where}: 'expected' does not fit 'schema': {exc.message}"
            ) from None
        metadata = record.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise DatasetError(f"{where}: 'metadata' is an object")
        assert isinstance(schema, dict)  # _check_schema said so
        cases.append(ExtractionCase(case_id, prompt, schema, record["expected"], metadata))
    if not cases:
        raise DatasetError(f"{path}: no cases in the file")
    return cases


# --------------------------------------------------------------------------- BFCL

# BFCL's parameter types (Python-flavoured) → JSON Schema types.
_BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": None}


def _bfcl_schema(schema: Any) -> Any:
    """A BFCL parameter schema in JSON Schema terms (``dict`` → ``object``, ...)."""
    if isinstance(schema, list):
        return [_bfcl_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            mapped = _BFCL_TYPES.get(value, value)
            if mapped is not None:
                out["type"] = mapped
        elif key in ("properties",) and isinstance(value, dict):
            out[key] = {k: _bfcl_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _bfcl_schema(value)
        elif key == "optional":  # BFCL's own flag; "required" says it in JSON Schema
            continue
        else:
            out[key] = value
    if out.get("type") == "array" and "enum" in out:
        # BFCL puts the items' enum on the array itself.
        items = dict(out.get("items") or {})
        items.setdefault("enum", out.pop("enum"))
        out["items"] = items
    return out


def _bfcl_name(name: str) -> str:
    # OpenAI function names allow no dots (BFCL's "math.factorial"): as BFCL does for
    # OpenAI models, dots become underscores.
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]


def _bfcl_nested(option: Any) -> Any:
    """One acceptable value: a dict's values are lists of acceptable values again."""
    if isinstance(option, dict):
        return {k: _bfcl_value(v) for k, v in option.items()}
    if isinstance(option, list):
        return [_bfcl_nested(v) for v in option]
    return option


def _bfcl_value(options: Any) -> Any:
    """BFCL's list of acceptable values ("" = may be left out) as a value or matcher."""
    if not isinstance(options, list):
        return options
    values = [_bfcl_nested(v) for v in options if v != ""]
    optional = len(values) < len(options)
    if len(values) == 1 and not optional:
        return values[0]
    matcher: dict[str, Any] = {"$one_of": values}
    if optional:
        matcher["$optional"] = True
    return matcher


def _bfcl_messages(where: str, question: Any) -> list[dict[str, Any]]:
    # "question" is a list of turns, each a list of messages; single-turn categories
    # have one turn. Only single-turn cases are imported.
    if isinstance(question, str):
        return [{"role": "user", "content": question}]
    if isinstance(question, list) and question and isinstance(question[0], list):
        if len(question) != 1:
            raise DatasetError(f"{where}: multi-turn BFCL cases are not supported")
        question = question[0]
    if not isinstance(question, list) or not all(isinstance(m, dict) for m in question):
        raise DatasetError(f"{where}: 'question' is not a list of messages")
    return [{"role": str(m.get("role")), "content": m.get("content")} for m in question]


def _json_objects(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """BFCL files are JSON Lines despite the .json name; a JSON list is accepted too."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise DatasetError(f"{path}: not JSON: {exc}") from None
        return [(f"{path}: item {i}", item) for i, item in enumerate(items)]
    return list(_lines(Path(path)))


def import_bfcl(src: Path, dest: Path, answers: Path | None = None) -> tuple[int, list[str]]:
    """Convert a BFCL question file (and its ``possible_answer`` file) into tool cases.

    ``function`` → ``tools`` (types mapped to JSON Schema, dots in names → ``_``);
    ``ground_truth`` (one ``{name: {param: [acceptable values]}}`` per expected call) →
    ``expected`` (``""`` among the values → ``$optional``, several → ``$one_of``).
    Without ``answers``, only irrelevance cases (ids starting ``irrelevance`` or
    ``live_irrelevance``: no tool should be called) are accepted. Returns the number of
    cases written (atomically) to ``dest``, and the cases left out, each with why (a
    ground truth naming a parameter its function does not declare: BFCL data errors that no
    answer could match).
    """
    truth: dict[str, Any] = {}
    if answers is not None:
        for where, record in _json_objects(Path(answers)):
            if "id" not in record or "ground_truth" not in record:
                raise DatasetError(f"{where}: a possible answer has 'id' and 'ground_truth'")
            truth[str(record["id"])] = record["ground_truth"]
    lines: list[str] = []
    skipped: list[str] = []
    for where, record in _json_objects(Path(src)):
        if "id" not in record or "function" not in record:
            raise DatasetError(f"{where}: a BFCL case has 'id', 'question' and 'function'")
        case_id = str(record["id"])
        functions = record["function"]
        functions = functions if isinstance(functions, list) else [functions]
        if not functions:
            skipped.append(f"{case_id}: no functions to call")
            continue
        tools: list[dict[str, Any]] = []
        for function in functions:
            if not isinstance(function, dict) or "name" not in function:
                raise DatasetError(f"{where}: a function has a 'name'")
            params = _bfcl_schema(function.get("parameters") or {"type": "dict"})
            params.setdefault("type", "object")
            params.setdefault("properties", {})
            tools.append(
                {
                    "type": "function",
                    "function": {
                        "name": _bfcl_name(str(function["name"])),
                        "description": str(function.get("description", "")),
                        "parameters": params,
                    },
                }
            )
        if case_id in truth:
            expected = []
            for call in truth[case_id]:
                if not isinstance(call, dict) or len(call) != 1:
                    raise DatasetError(f"{where}: ground truth call is {{name: {{...}}}}")
                ((name, args),) = call.items()
                args = args if isinstance(args, dict) else {}
                declared: dict[str, Any] = next(
                    (
                        t["function"]["parameters"]["properties"]
                        for t in tools
                        if t["function"]["name"] == _bfcl_name(name)
                    ),
                    {},
                )
                # BFCL's answers sometimes list a parameter the function does not have,
                # always as optional (""): leave it out rather than refuse the case.
                args = {
                    k: v
                    for k, v in args.items()
                    if k in declared or not (isinstance(v, list) and "" in v)
                }
                expected.append(
                    {
                        "name": _bfcl_name(name),
                        "arguments": {k: _bfcl_value(v) for k, v in args.items()},
                    }
                )
        elif re.match(r"^(live_)?irrelevance", case_id):
            expected = []
        else:
            raise DatasetError(
                f"{where}: no ground truth for {case_id!r}; give the possible_answer file"
            )
        checked = [_check_tool(where, t) for t in tools]
        try:
            _check_expected(where, expected, checked, values=False)
        except DatasetError as exc:
            skipped.append(f"{case_id}: {str(exc).removeprefix(where + ': ')}")
            continue
        case = {
            "id": case_id,
            "messages": _bfcl_messages(where, record.get("question")),
            "tools": tools,
            "expected": expected,
            "metadata": {"source": "bfcl", "category": case_id.rsplit("_", 1)[0]},
        }
        lines.append(json.dumps(case, ensure_ascii=False))
    if not lines:
        raise DatasetError(f"{src}: no cases in the file")
    _atomic_write(Path(dest), "".join(line + "\n" for line in lines))
    return len(lines), skipped
