"""``kind: chat``: conversations of several user turns, one request (and one row) per turn.

Each turn is sent with the conversation so far. ``history: own`` (the default) replays
the provider's *own* earlier answers, as a product's users see them: turn k+1 waits for
turn k's row (``RequestSpec.after``, :mod:`harness.run.chains`) and is completed from it
just before it is sent (:func:`prepare`). ``history: reference`` sends the dataset's
reference answers as the earlier assistant turns instead, so every provider answers the
same prompts (turns are then independent requests).

Dataset: JSON Lines, one conversation per line (see the README, *Suite kinds*)::

    {"id": "refund", "system": "optional", "turns": [
        {"user": "…", "reference": "…", "regex": "optional pattern"}, …]}

Scores per turn (columns ``turn``, ``conversation``, ``chat_history``):

- ``exact_match``/``f1``: SQuAD-normalised against the turn's ``reference``;
- ``contains``: the normalised reference occurs in the normalised answer;
- ``regex_match``: the turn's ``regex`` matches the answer (case-insensitive);
- ``turn_score``: the turn's score as the suite's ``score`` says (``auto``: the regex if
  the turn has one, else ``contains``): the chat kind's primary column;
- with a ``judge``, ``judge_correctness`` too (the rag_qa judge; the earlier turns are its
  passages).

A failed request scores 0; a turn whose earlier turn failed (own history) is not sent
and its row says so (``error_type = earlier_turn_failed``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from harness.request import RequestSpec, Row, request_identity
from harness.suites.base import MAX_COUNT, MAX_TOKENS, StrictModel, SuiteConfig
from harness.suites.rag_qa import JudgeConfig

EARLIER_TURN_FAILED = "earlier_turn_failed"
"""``error_type`` of a turn not sent because the turn before it failed (own history)."""


class Turn(StrictModel):
    """One user turn and what a good answer to it is."""

    user: str = Field(min_length=1)
    reference: str | None = Field(default=None, description="reference answer")
    regex: str | None = Field(default=None, description="pattern a good answer matches")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from None
        return value

    @model_validator(mode="after")
    def _scorable(self) -> Turn:
        if self.reference is None and self.regex is None:
            raise ValueError("a turn needs a 'reference' or a 'regex' to be scored")
        return self


class Conversation(StrictModel):
    """One conversation of the dataset."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    system: str | None = None
    turns: list[Turn] = Field(min_length=1, max_length=100)


def load_conversations(path: Path) -> list[Conversation]:
    """The conversations of a JSONL file; ValueError naming ``file:line`` and the key."""
    out: list[Conversation] = []
    seen: set[str] = set()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            conversation = Conversation.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not JSON: {exc.msg}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(line)"
            raise ValueError(f"{path}:{number}: {where}: {first['msg']}") from None
        if conversation.id in seen:
            raise ValueError(f"{path}:{number}: id: duplicate conversation id {conversation.id!r}")
        seen.add(conversation.id)
        out.append(conversation)
    if not out:
        raise ValueError(f"{path}: no conversations")
    return out


class ChatSuite(SuiteConfig):
    """Conversations replayed turn by turn (see the module docstring)."""

    kind: Literal["chat"] = "chat"
    max_tokens: int = Field(default=128, ge=1, le=MAX_TOKENS)
    dataset: str = Field(description="JSONL of conversations, relative to the file naming it")
    history: Literal["own", "reference"] = "own"
    score: Literal["auto", "contains", "exact_match", "f1", "regex"] = "auto"
    limit: int | None = Field(default=None, ge=1, description="use only the first N")
    repeats: int = Field(default=1, ge=1, le=MAX_COUNT)
    judge: JudgeConfig | None = None
    _conversations: list[Conversation] = PrivateAttr(default_factory=list)

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

    @model_validator(mode="after")
    def _load(self) -> ChatSuite:
        refuse_unchained_load(self)
        conversations = load_conversations(Path(self.dataset))
        self._conversations = conversations[: self.limit] if self.limit else conversations
        for c in self._conversations:
            for i, turn in enumerate(c.turns[:-1], 1):
                if self.history == "reference" and turn.reference is None:
                    raise ValueError(
                        f"{self.dataset}: conversation {c.id!r} turn {i}: history: reference"
                        " needs a 'reference' answer on every turn but the last"
                    )
            if self.score == "regex" and any(t.regex is None for t in c.turns):
                raise ValueError(
                    f"{self.dataset}: conversation {c.id!r}: score: regex needs"
                    " a 'regex' on every turn"
                )
            if self.score in ("contains", "exact_match", "f1") and any(
                t.reference is None for t in c.turns
            ):
                raise ValueError(
                    f"{self.dataset}: conversation {c.id!r}: score: {self.score}"
                    " needs a 'reference' on every turn"
                )
        return self

    @property
    def conversations(self) -> list[Conversation]:
        return self._conversations


def refuse_unchained_load(suite: SuiteConfig) -> None:
    """Chained requests (a conversation, a cache's warm requests) run a fixed plan:
    a time-bounded phase would replay chains out of order, a level warm-up would cut one."""
    if suite.load is not None and suite.load.duration_s is not None:
        raise ValueError(f"kind {suite.kind}: load.duration_s is not supported (bound by count)")
    if suite.load is not None and suite.load.warmup:
        raise ValueError(f"kind {suite.kind}: load.warmup is not supported")


def case_id(conversation: str, turn: int) -> str:
    """A turn's ``case_id``: ``<conversation>/<turn>``, turns counted from 1."""
    return f"{conversation}/{turn}"


def messages_for(system: str | None, users: list[str], answers: list[str]) -> list[dict[str, Any]]:
    """The conversation up to the last user turn: ``answers`` are the earlier assistant turns."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for i, user in enumerate(users):
        if i:
            messages.append({"role": "assistant", "content": answers[i - 1]})
        messages.append({"role": "user", "content": user})
    return messages


def plan(suite: ChatSuite, provider: str) -> Iterator[RequestSpec]:
    """Turn-major: every conversation's turn 1, then every turn 2, …, so that a turn's
    predecessor is always planned (and dispatched) before it.

    The messages planned carry the reference history; with ``history: own`` they are
    a stand-in (for the dry run's estimate and the budget) that :func:`prepare` replaces.
    """
    depth = max(len(c.turns) for c in suite.conversations)
    for phase in suite.phases():
        for repeat in range(suite.repeats):
            for t in range(depth):
                for c in suite.conversations:
                    if t >= len(c.turns):
                        continue
                    system = c.system or suite.system
                    users = [turn.user for turn in c.turns[: t + 1]]
                    references = [turn.reference or "" for turn in c.turns[:t]]
                    turn = c.turns[t]
                    yield RequestSpec(
                        suite=suite.name,
                        suite_kind=suite.kind,
                        case_id=case_id(c.id, t + 1),
                        repeat=repeat,
                        provider=provider,
                        messages=messages_for(system, users, references),
                        max_tokens=suite.max_tokens,
                        load_level=phase.label,
                        after=case_id(c.id, t) if t and suite.history == "own" else None,
                        meta={
                            "conversation": c.id,
                            "turn": t + 1,
                            "system": system,
                            "users": users,
                            "history": references,
                            "reference": turn.reference,
                            "regex": turn.regex,
                            "score": suite.score,
                            # what the judge reads (harness.suites.rag_qa.judge_messages)
                            "references": [turn.reference] if turn.reference else [],
                            "question": turn.user,
                            "contexts": _contexts(users, references),
                        },
                    )


def _contexts(users: list[str], answers: list[str]) -> list[str]:
    out = []
    for i, answer in enumerate(answers):
        out += [f"user: {users[i]}", f"assistant: {answer}"]
    return out or ["(the conversation starts here)"]


WARMUP_MESSAGES = [{"role": "user", "content": "Reply with OK."}]
"""What a provider's unrecorded warm-up request sends instead of a conversation: a
warm-up must not put a measured turn's prompt into the provider's prefix cache."""


def prepare(request: RequestSpec) -> RequestSpec | Row:
    """With own history: the turn's messages with the provider's own earlier answers,
    from the previous turn's row (its ``chat_history`` and its answer). Idempotent."""
    if request.warmup:
        return dataclasses.replace(request, messages=WARMUP_MESSAGES)
    if request.after is None:
        return request
    previous = request.previous
    # The scheduler hands every measured turn its predecessor's row (run/chains.py);
    # without one (a bug) the turn is not sent with a made-up history.
    if previous is None or previous.get("status") != "ok":
        why = "its row is missing" if previous is None else previous.get("error_type")
        row: Row = {
            **request_identity(request),
            "status": "error",
            "error_type": EARLIER_TURN_FAILED,
            "error_message": f"not sent: turn {request.meta['turn'] - 1} of conversation"
            f" {request.meta['conversation']} failed ({why})",
            "attempts": 0,
            "retry_wait_s": 0.0,
        }
        return row | score(row, request)
    history = [*(previous.get("chat_history") or []), previous.get("response_text") or ""]
    meta = request.meta
    return dataclasses.replace(
        request,
        messages=messages_for(meta["system"], meta["users"], history),
        meta={**meta, "history": history, "contexts": _contexts(meta["users"], history)},
    )


def _columns(request: RequestSpec, history: list[str]) -> dict[str, Any]:
    return {
        "conversation": request.meta["conversation"],
        "turn": request.meta["turn"],
        "chat_history": list(history),
    }


def score(row: dict[str, Any], request: RequestSpec) -> dict[str, Any]:
    """One turn's scores (0 for a failed request; see the module docstring)."""
    from harness.scoring import exact_match, f1, normalize_answer

    meta = request.meta
    reference: str | None = meta["reference"]
    pattern: str | None = meta["regex"]
    answer = row.get("response_text") or "" if row.get("status") == "ok" else ""
    out: dict[str, Any] = _columns(request, meta["history"])
    if reference is not None:
        out["references"] = [reference]
        out["exact_match"] = exact_match(answer, [reference]) if answer else 0.0
        out["f1"] = f1(answer, [reference]) if answer else 0.0
        needle = normalize_answer(reference)
        out["contains"] = float(
            bool(answer) and bool(needle) and needle in normalize_answer(answer)
        )
    if pattern is not None:
        out["regex_match"] = float(bool(answer) and re.search(pattern, answer, re.I) is not None)
    how = meta["score"]
    if how == "auto":
        how = "regex" if pattern is not None else "contains"
    out["turn_score"] = out["regex_match" if how == "regex" else how]
    return out
