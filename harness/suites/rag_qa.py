"""``kind: rag_qa``: questions answered from given passages, scored on the same responses.

Each case is rendered with a grounded-answer prompt (Jinja2, sandboxed) and
sent to every provider. The answer is scored as it arrives:

- ``exact_match``/``f1``: the official SQuAD 2.0 metrics (unanswerable = 1 only
  for an empty answer);
- ``exact_match_abstain``/``f1_abstain``: the same, with an abstention ("I don't
  know", …) counted as the empty answer — the score a RAG product cares about;
- ``contains``: a normalised reference occurs in the answer (lenient for chatty
  models); ``regex_match``: the suite's or the case's ``answer_regex`` matches;
- ``abstained``; ``answerable``;
- optionally an LLM judge (see :class:`JudgeConfig`).

A failed request scores 0 on every metric: excluding it would reward flaky
providers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from harness.request import RequestSpec
from harness.sim.profile import SimProfile
from harness.suites.base import MAX_COUNT, MAX_TOKENS, StrictModel, SuiteConfig
from harness.suites.datasets import Case, DatasetError, load_cases


class PromptOverride(StrictModel):
    """Per-provider prompt: some models need another system prompt or template."""

    system: str | None = None
    template: str | None = None


class JudgeConfig(StrictModel):
    """An LLM that grades answers: any litellm model, or a simulated one.

    The judge sees the question, the passages, the reference answers and the
    candidate's answer, and returns structured output (JSON schema): correctness
    0–2 against the references, and whether the answer is faithful to the
    passages. Its tokens and cost are stored in ``judge_*`` columns, apart from
    the candidate's.
    """

    model: str | None = None
    api_base: str | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    params: dict[str, Any] = Field(default_factory=lambda: {"temperature": 0})
    simulate: SimProfile | None = None
    timeout_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _model_or_simulator(self) -> JudgeConfig:
        if self.simulate is None and not self.model:
            raise ValueError("a judge needs 'model' (a litellm model string) or 'simulate'")
        return self


class RagQaSuite(SuiteConfig):
    """A dataset of cases (see :mod:`harness.suites.datasets`), each sent once per repeat."""

    kind: Literal["rag_qa"] = "rag_qa"
    max_tokens: int = Field(default=64, ge=1, le=MAX_TOKENS)
    dataset: str = Field(description="path, relative to the file that names it")
    format: str | None = Field(default=None, description="override format detection")
    limit: int | None = Field(default=None, ge=1, description="use only the first N cases")
    repeats: int = Field(default=1, ge=1, le=MAX_COUNT)
    template: str | None = Field(default=None, description="Jinja2 user-message template")
    answer_regex: str | None = None
    overrides: dict[str, PromptOverride] = Field(default_factory=dict)
    judge: JudgeConfig | None = None
    _cases: list[Case] = PrivateAttr(default_factory=list)

    @field_validator("dataset")
    @classmethod
    def _resolve(cls, value: str, info: ValidationInfo) -> str:
        base = (info.context or {}).get("base_dir")
        path = Path(value)
        if base is not None and not path.is_absolute():
            path = Path(base) / path
        if not path.is_file():
            raise ValueError(f"dataset file not found: {value}")
        return str(path.resolve())

    @field_validator("answer_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"answer_regex does not compile: {exc}") from None
        return value

    @model_validator(mode="after")
    def _load(self) -> RagQaSuite:
        from harness.suites.prompting import check_template

        try:
            cases = load_cases(Path(self.dataset), self.format)
            check_template(self.template)
            for override in self.overrides.values():
                if override.template is not None:
                    check_template(override.template)
        except DatasetError as exc:
            raise ValueError(str(exc)) from None
        if not cases:
            raise ValueError(f"dataset has no cases: {self.dataset}")
        self._cases = cases[: self.limit] if self.limit else cases
        return self

    @property
    def cases(self) -> list[Case]:
        return self._cases


def plan(suite: RagQaSuite, provider: str) -> Iterator[RequestSpec]:
    """One request per case and repeat, with the provider's prompt override if any."""
    from harness.suites.prompting import render_messages

    override = suite.overrides.get(provider, PromptOverride())
    template = override.template if override.template is not None else suite.template
    system = override.system if override.system is not None else suite.system
    for phase in suite.phases():
        for repeat in range(suite.repeats):
            for case in suite.cases:
                yield RequestSpec(
                    suite=suite.name,
                    suite_kind=suite.kind,
                    case_id=case.id,
                    repeat=repeat,
                    provider=provider,
                    messages=render_messages(case, template, system),
                    max_tokens=suite.max_tokens,
                    load_level=phase.label,
                    meta={
                        "references": list(case.references),
                        "contexts": list(case.contexts),
                        "question": case.question,
                        "answer_regex": case.metadata.get("answer_regex") or suite.answer_regex,
                    },
                )


def score(row: dict[str, Any], request: RequestSpec) -> dict[str, Any]:
    """Scores of one answer (all 0 for a failed request)."""
    from harness.scoring import normalize_answer, score_answer

    references: list[str] = request.meta["references"]
    answer = row.get("response_text") or ""
    pattern = request.meta.get("answer_regex")
    out: dict[str, Any] = {"references": references, "answerable": bool(references)}
    if row.get("status") != "ok":
        return out | {
            "exact_match": 0.0,
            "f1": 0.0,
            "exact_match_abstain": 0.0,
            "f1_abstain": 0.0,
            "contains": 0.0,
            "abstained": None,
            "regex_match": None if pattern is None else 0.0,
        }
    scored = score_answer(answer, references)
    normalized = normalize_answer(answer)
    contains = (
        any(normalize_answer(r) in normalized for r in references if normalize_answer(r))
        if references
        else scored["abstained"]
    )
    return out | {
        "exact_match": scored["exact_match"],
        "f1": scored["f1"],
        "exact_match_abstain": scored["exact_match_with_abstention"],
        "f1_abstain": scored["f1_with_abstention"],
        "abstained": scored["abstained"],
        "contains": float(contains),
        "regex_match": None if pattern is None else float(bool(re.search(pattern, answer))),
    }


JUDGE_SYSTEM = (
    "You grade answers of a question-answering system. Use only the reference answers and"
    " the passages given. correctness: 2 if the answer means the same as a reference answer"
    " (or, when there is no reference, the answer correctly says the passages do not contain"
    " it), 1 if partly correct, 0 otherwise. faithful: true if everything the answer states"
    " is supported by the passages (an abstention is faithful). Reply with JSON only."
)
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "correctness": {"type": "integer", "minimum": 0, "maximum": 2},
        "faithful": {"type": "boolean"},
        "rationale": {"type": "string", "maxLength": 300},
    },
    "required": ["correctness", "faithful", "rationale"],
    "additionalProperties": False,
}


def judge_messages(row: dict[str, Any], request: RequestSpec) -> list[dict[str, str]]:
    """The fixed rubric prompt for one answer."""
    references = request.meta["references"]
    passages = "\n".join(f"[{i}] {p}" for i, p in enumerate(request.meta["contexts"], 1))
    refs = "\n".join(f"- {r}" for r in references) or "(none: the passages do not answer it)"
    user = (
        f"Passages:\n{passages}\n\nQuestion: {request.meta['question']}\n\n"
        f"Reference answers:\n{refs}\n\nAnswer to grade: {row.get('response_text') or ''}"
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_judgement(text: str) -> dict[str, Any]:
    """The judge's JSON (also when wrapped in prose or a code fence); ValueError if none."""
    match = re.search(r"\{.*\}", text, re.S)
    if match is None:
        raise ValueError("no JSON object in the judge's answer")
    data = json.loads(match.group(0))
    correctness = data.get("correctness")
    if not isinstance(correctness, int) or not 0 <= correctness <= 2:
        raise ValueError(f"correctness must be 0, 1 or 2, got {correctness!r}")
    faithful = data.get("faithful")
    if not isinstance(faithful, bool):
        raise ValueError(f"faithful must be true or false, got {faithful!r}")
    return {
        "judge_correctness": correctness / 2,
        "judge_faithful": faithful,
        "judge_rationale": str(data.get("rationale", ""))[:500],
    }
