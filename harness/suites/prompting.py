"""Prompts for the RAG QA suite: a case rendered into OpenAI-style chat messages.

The user message is a Jinja2 template rendered in a sandbox
(:class:`jinja2.sandbox.ImmutableSandboxedEnvironment`, a ``SandboxedEnvironment`` that
also forbids modifying lists and dicts) with :class:`jinja2.StrictUndefined`: a misspelt
variable is an error, not an empty string, and attributes starting with ``_`` (the way
out of a template, ``''.__class__.__mro__``) are refused. Blocks are trimmed
(``trim_blocks``, ``lstrip_blocks``) and nothing is HTML-escaped.

Variables a template can use:

| variable | value |
| --- | --- |
| `question` | the question (string) |
| `contexts` | the passages (list of strings); number them with `loop.index` |
| `id` | the case id |
| `metadata` | the case metadata (object) |

The reference answers are deliberately *not* available: a template must not be able to
leak them into the prompt. Dataset text is inserted as values, never parsed as template
code, so ``{{ ... }}`` inside a question is sent literally.

The system message is plain text (not a template). ``system=None`` uses
:data:`DEFAULT_SYSTEM`; ``system=""`` sends no system message.
"""

from __future__ import annotations

import functools
from types import TracebackType
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2 import meta as jinja_meta
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from harness.suites.datasets import Case, DatasetError

__all__ = [
    "ABSTAIN_ANSWER",
    "DEFAULT_SYSTEM",
    "DEFAULT_TEMPLATE",
    "TEMPLATE_VARIABLES",
    "check_template",
    "render_messages",
]

ABSTAIN_ANSWER = "I don't know"
"""The exact reply the default prompt asks for when the passages do not hold the answer."""

DEFAULT_SYSTEM = (
    "You answer questions using only the numbered context passages in the user's message,"
    " never outside knowledge. Answer as briefly as possible: give the shortest phrase from"
    " the passages that answers the question (a few words, not a full sentence), with no"
    " explanation and no passage numbers. If the passages do not contain the answer, reply"
    f" exactly: {ABSTAIN_ANSWER}"
)
"""System message of the grounded, extractive answer prompt."""

DEFAULT_TEMPLATE = """\
Context passages:

{% for passage in contexts %}
[{{ loop.index }}] {{ passage }}

{% endfor %}
Question: {{ question }}

Answer with the shortest phrase from the passages, or exactly "I don't know" if they do \
not contain the answer.
"""
"""User message template: the numbered passages, the question, the answer instruction."""

TEMPLATE_VARIABLES: tuple[str, ...] = ("question", "contexts", "id", "metadata")
"""Names a template can use."""

# Outputs larger than this (a string or list repeated with ``*``) are refused, and so are
# huge powers: a template must not be able to exhaust memory with one expression.
_MAX_REPEAT_LEN = 1_000_000
_MAX_EXPONENT = 1_000


class _PromptEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with ``*`` and ``**`` checked for huge results."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse ``"x" * 10**9``-style repetition and ``9 ** 10**9``-style powers."""
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > _MAX_REPEAT_LEN
                ):
                    raise SecurityError(f"the result would exceed {_MAX_REPEAT_LEN} items")
        if operator == "**" and isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
            raise SecurityError(f"exponents above {_MAX_EXPONENT} are not allowed")
        return super().call_binop(context, operator, left, right)


_ENV = _PromptEnvironment(
    undefined=StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
)


def _template_line(tb: TracebackType | None) -> int | None:
    """The template line of a runtime error (Jinja rewrites frames to ``<template>``)."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


@functools.lru_cache(maxsize=64)
def _compile(source: str) -> Template:
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise DatasetError(
            f"prompt template line {exc.lineno}: syntax error: {exc.message}"
        ) from None
    except TemplateError as exc:  # pragma: no cover - parse raises syntax errors only
        raise DatasetError(f"prompt template: {exc}") from None
    unknown = sorted(
        jinja_meta.find_undeclared_variables(tree) - set(TEMPLATE_VARIABLES) - set(_ENV.globals)
    )
    if unknown:
        raise DatasetError(
            f"prompt template: unknown variable {unknown[0]!r}"
            f" (available: {', '.join(TEMPLATE_VARIABLES)})"
        )
    try:
        return _ENV.from_string(tree)
    except TemplateError as exc:  # pragma: no cover - the tree was parsed above
        raise DatasetError(f"prompt template: {exc}") from None


def _render(template: Template, variables: dict[str, Any], case_id: str) -> str:
    try:
        return template.render(variables)
    except SecurityError as exc:
        where = _where(exc, case_id)
        raise DatasetError(f"{where}: refused by the sandbox: {exc}") from None
    except UndefinedError as exc:
        raise DatasetError(f"{_where(exc, case_id)}: undefined value: {exc}") from None
    except Exception as exc:  # any error the template's expressions raise
        kind = type(exc).__name__
        raise DatasetError(f"{_where(exc, case_id)}: rendering failed: {kind}: {exc}") from None


def _where(exc: BaseException, case_id: str) -> str:
    line = _template_line(exc.__traceback__)
    at = f" line {line}" if line is not None else ""
    return f"prompt template{at} (case {case_id!r})"


def check_template(template: str | None = None) -> None:
    """Raise :class:`DatasetError` if ``template`` does not compile or uses unknown names.

    For config validation, before any case is rendered. None checks :data:`DEFAULT_TEMPLATE`.
    """
    _compile(DEFAULT_TEMPLATE if template is None else template)


def render_messages(
    case: Case, template: str | None = None, system: str | None = None
) -> list[dict[str, str]]:
    """Render ``case`` into chat messages: the system message (if any), then the user's.

    ``template`` is a Jinja2 template of the user message (None: :data:`DEFAULT_TEMPLATE`);
    ``system`` is the plain-text system message (None: :data:`DEFAULT_SYSTEM`, ``""``: none).
    Raises :class:`DatasetError` for a template that does not compile, uses unknown
    variables, fails while rendering, is refused by the sandbox, or renders to nothing.
    """
    compiled = _compile(DEFAULT_TEMPLATE if template is None else template)
    variables: dict[str, Any] = {
        "question": case.question,
        "contexts": list(case.contexts),
        "id": case.id,
        "metadata": dict(case.metadata),
    }
    user = _render(compiled, variables, case.id).strip()
    if not user:
        raise DatasetError(f"prompt template (case {case.id!r}): renders an empty user message")
    system_text = DEFAULT_SYSTEM if system is None else system
    messages: list[dict[str, str]] = []
    if system_text:
        messages.append({"role": "system", "content": system_text})
    messages.append({"role": "user", "content": user})
    return messages
