"""``kind: tool_call``: conversations with tools; the calls the model makes are scored.

Each case (see :mod:`harness.suites.tool_data` for the file format) is sent with its
tools (``tools`` and ``tool_choice`` in the request body), and the streamed tool calls
the transport assembled (the row's ``tool_calls``) are scored against the expected ones
by :func:`harness.scoring.tool_calls.score_tool_calls`: ``tool_valid``, ``tool_exact``,
``tool_arg_precision``, ``tool_arg_recall`` and ``tool_error`` (why not valid or not
exact). The time to the first tool-call token is the row's ``ttft_tool_s``.

A failed request scores 0 on ``tool_valid`` and ``tool_exact`` and has no argument
precision/recall: excluding it would reward flaky providers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from harness.request import RequestSpec
from harness.suites.base import MAX_COUNT, MAX_TOKENS, SuiteConfig
from harness.suites.datasets import DatasetError
from harness.suites.tool_data import ToolCase, load_tool_cases, load_tools_file


def _resolve_path(value: str, info: ValidationInfo) -> str:
    base = (info.context or {}).get("base_dir")
    path = Path(value)
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    if not path.is_file():
        raise ValueError(f"file not found: {value}")
    return str(path.resolve())


class ToolCallSuite(SuiteConfig):
    """A dataset of tool cases, each sent once per repeat with its tools."""

    kind: Literal["tool_call"] = "tool_call"
    max_tokens: int = Field(default=256, ge=1, le=MAX_TOKENS)
    dataset: str = Field(description="JSONL of tool cases, relative to the file naming it")
    tools_file: str | None = Field(
        default=None, description="JSON list of tool definitions the cases name"
    )
    limit: int | None = Field(default=None, ge=1, description="use only the first N cases")
    repeats: int = Field(default=1, ge=1, le=MAX_COUNT)
    tool_choice: Literal["auto", "required", "none", "first_tool"] | None = Field(
        default="auto",
        description="sent as tool_choice (None: not sent); first_tool forces a call of the"
        " case's first tool by name, for servers without 'required' (llama-cpp-python)",
    )
    parallel_tool_calls: bool | None = Field(
        default=None, description="sent as parallel_tool_calls when set"
    )
    _cases: list[ToolCase] = PrivateAttr(default_factory=list)

    @field_validator("dataset", "tools_file")
    @classmethod
    def _resolve(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _resolve_path(value, info)

    @model_validator(mode="after")
    def _load(self) -> ToolCallSuite:
        try:
            catalog = load_tools_file(Path(self.tools_file)) if self.tools_file else None
            cases = load_tool_cases(Path(self.dataset), catalog)
        except DatasetError as exc:
            raise ValueError(str(exc)) from None
        self._cases = cases[: self.limit] if self.limit else cases
        return self

    @property
    def cases(self) -> list[ToolCase]:
        return self._cases


def plan(suite: ToolCallSuite, provider: str) -> Iterator[RequestSpec]:
    """One request per case and repeat; the tools and tool_choice go in the body."""
    for phase in suite.phases():
        for repeat in range(suite.repeats):
            for case in suite.cases:
                messages = list(case.messages)
                if suite.system and not any(m.get("role") == "system" for m in messages):
                    messages.insert(0, {"role": "system", "content": suite.system})
                extra: dict[str, Any] = {"tools": case.tools}
                if suite.tool_choice == "first_tool":
                    first = case.tools[0]["function"]["name"]
                    extra["tool_choice"] = {"type": "function", "function": {"name": first}}
                elif suite.tool_choice is not None:
                    extra["tool_choice"] = suite.tool_choice
                if suite.parallel_tool_calls is not None:
                    extra["parallel_tool_calls"] = suite.parallel_tool_calls
                yield RequestSpec(
                    suite=suite.name,
                    suite_kind=suite.kind,
                    case_id=case.id,
                    repeat=repeat,
                    provider=provider,
                    messages=messages,
                    max_tokens=suite.max_tokens,
                    extra=extra,
                    load_level=phase.label,
                    meta={"tools": case.tools, "expected": case.expected},
                )


def score(row: dict[str, Any], request: RequestSpec) -> dict[str, Any]:
    """The tool-call scores of one answer (see :mod:`harness.scoring.tool_calls`)."""
    from harness.scoring.tool_calls import parse_calls, score_tool_calls

    if row.get("status") != "ok":
        return {
            "tool_valid": 0.0,
            "tool_exact": 0.0,
            "tool_arg_precision": None,
            "tool_arg_recall": None,
            "tool_error": "request failed",
        }
    try:
        calls = parse_calls(row.get("tool_calls"))
    except ValueError as exc:  # not the transport's JSON: a bug worth seeing in the row
        return {"tool_valid": 0.0, "tool_exact": 0.0, "tool_error": f"tool_calls: {exc}"}
    return score_tool_calls(calls, request.meta["tools"], request.meta["expected"]).columns()
