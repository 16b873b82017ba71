"""``kind: structured``: extraction prompts answered as JSON that must follow a schema.

Each case (see :mod:`harness.suites.tool_data`: ``prompt``, ``schema``, ``expected``) is
sent in one of these modes (the row's ``structured_mode``):

* ``json_schema``: OpenAI's structured outputs, ``response_format: {"type":
  "json_schema", "json_schema": {"name", "schema", "strict"}}`` (OpenAI, vLLM, SGLang,
  llama.cpp's own ``llama-server``, most gateways);
* ``json_object_schema``: ``response_format: {"type": "json_object", "schema": ...}``,
  the dialect of llama-cpp-python's server (which refuses ``json_schema``) and Anyscale;
* ``instruction``: no ``response_format``; the schema goes in the prompt
  (``instruction``), for providers without a structured-output option.

``mode`` sets it for every provider and ``provider_modes`` per provider name. Scores
(:mod:`harness.scoring.structured`): ``json_valid``, ``schema_valid``,
``field_accuracy``, ``structured_error``; a failed request scores 0 on all three.

``compare_free_form: true`` also sends every case's prompt as it is, without a schema
(``structured_mode: free_form``), under the suite name ``<name>.free_form``: the summary
then shows the latency of structured and free-form answers to the same prompts side by
side (``harness.report.quality.structured_latency``); free-form answers are not scored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from harness.request import RequestSpec
from harness.suites.base import MAX_COUNT, MAX_TOKENS, SuiteConfig
from harness.suites.datasets import DatasetError
from harness.suites.tool_call import _resolve_path
from harness.suites.tool_data import ExtractionCase, load_extraction_cases

Mode = Literal["json_schema", "json_object_schema", "instruction"]

FREE_FORM_SUFFIX = ".free_form"
"""Appended to the suite name of the free-form comparison requests."""

DEFAULT_INSTRUCTION = (
    "Reply with only a JSON value that follows this JSON Schema, and no other text:\n{schema}"
)


class StructuredSuite(SuiteConfig):
    """A dataset of extraction cases, each sent once per repeat in the provider's mode."""

    kind: Literal["structured"] = "structured"
    max_tokens: int = Field(default=512, ge=1, le=MAX_TOKENS)
    dataset: str = Field(description="JSONL of extraction cases, relative to the file naming it")
    limit: int | None = Field(default=None, ge=1, description="use only the first N cases")
    repeats: int = Field(default=1, ge=1, le=MAX_COUNT)
    mode: Mode = "json_schema"
    provider_modes: dict[str, Mode] = Field(
        default_factory=dict, description="provider name → mode, overriding 'mode'"
    )
    strict: bool = Field(default=False, description="json_schema's 'strict' flag")
    instruction: str = Field(
        default=DEFAULT_INSTRUCTION,
        description="appended to the prompt in instruction mode; {schema} is the schema",
    )
    compare_free_form: bool = Field(
        default=False, description="also send each prompt without a schema, for latency"
    )
    _cases: list[ExtractionCase] = PrivateAttr(default_factory=list)

    @field_validator("dataset")
    @classmethod
    def _resolve(cls, value: str, info: ValidationInfo) -> str:
        return _resolve_path(value, info)

    @field_validator("instruction")
    @classmethod
    def _names_schema(cls, value: str) -> str:
        if "{schema}" not in value:
            raise ValueError("the instruction must contain {schema}")
        return value

    @model_validator(mode="after")
    def _load(self) -> StructuredSuite:
        try:
            cases = load_extraction_cases(Path(self.dataset))
        except DatasetError as exc:
            raise ValueError(str(exc)) from None
        self._cases = cases[: self.limit] if self.limit else cases
        return self

    @property
    def cases(self) -> list[ExtractionCase]:
        return self._cases


def _schema_name(case_id: str) -> str:
    # OpenAI's json_schema.name: ^[a-zA-Z0-9_-]{1,64}$
    return re.sub(r"[^A-Za-z0-9_-]", "_", case_id)[:64] or "answer"


def request_parts(
    suite: StructuredSuite, case: ExtractionCase, mode: str
) -> tuple[str, dict[str, Any]]:
    """The user message and the body extras of ``case`` in ``mode`` (or ``free_form``)."""
    if mode == "json_schema":
        schema_format: dict[str, Any] = {"name": _schema_name(case.id), "schema": case.schema}
        if suite.strict:
            schema_format["strict"] = True
        return case.prompt, {
            "response_format": {"type": "json_schema", "json_schema": schema_format}
        }
    if mode == "json_object_schema":
        return case.prompt, {"response_format": {"type": "json_object", "schema": case.schema}}
    if mode == "instruction":
        schema_text = json.dumps(case.schema, ensure_ascii=False)
        return f"{case.prompt}\n\n{suite.instruction.replace('{schema}', schema_text)}", {}
    return case.prompt, {}


def plan(suite: StructuredSuite, provider: str) -> Iterator[RequestSpec]:
    """One request per case and repeat (and its free-form twin when asked for)."""
    mode = suite.provider_modes.get(provider, suite.mode)
    variants: list[tuple[str, str]] = [(suite.name, mode)]
    if suite.compare_free_form:
        variants.append((suite.name + FREE_FORM_SUFFIX, "free_form"))
    for phase in suite.phases():
        for repeat in range(suite.repeats):
            for case in suite.cases:
                for name, variant in variants:
                    text, extra = request_parts(suite, case, variant)
                    messages = [{"role": "user", "content": text}]
                    if suite.system:
                        messages.insert(0, {"role": "system", "content": suite.system})
                    yield RequestSpec(
                        suite=name,
                        suite_kind=suite.kind,
                        case_id=case.id,
                        repeat=repeat,
                        provider=provider,
                        messages=messages,
                        max_tokens=suite.max_tokens,
                        extra=extra,
                        load_level=phase.label,
                        meta={"schema": case.schema, "expected": case.expected, "mode": variant},
                    )


def score(row: dict[str, Any], request: RequestSpec) -> dict[str, Any]:
    """The structured scores of one answer (none for a free-form twin)."""
    from harness.scoring.structured import score_structured

    mode = request.meta["mode"]
    if mode == "free_form":
        return {"structured_mode": mode}
    if row.get("status") != "ok":
        return {
            "structured_mode": mode,
            "json_valid": 0.0,
            "schema_valid": 0.0,
            "field_accuracy": 0.0,
            "structured_error": "request failed",
        }
    scored = score_structured(
        row.get("response_text"), request.meta["schema"], request.meta["expected"]
    )
    return {"structured_mode": mode, **scored}
