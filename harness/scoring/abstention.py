r"""Abstention detection for free-form QA answers, and abstention-aware scores.

An answer is an *abstention* (the model declines to answer) when either

1. it normalises to the empty string under the official SQuAD rules
   (:func:`harness.scoring.squad.normalize_answer`): empty, whitespace-only,
   punctuation-only (``"."``, ``"?"``) or a bare article. These are exactly the
   predictions that the official scorer already treats as "no answer"; or
2. after a light clean-up, its **beginning** matches one of a curated list of refusal /
   "I don't know" phrasings (:data:`ABSTENTION_PATTERNS`).

The clean-up (:func:`_clean`): Unicode NFKC, lower-case, apostrophes deleted (``don't``
with a straight or typographic apostrophe and ``dont`` all become ``dont``), Markdown
emphasis and double quotes removed, whitespace collapsed; then any leading label
(``Answer:``, ``Final answer:``), apology (``Sorry,``, ``I'm sorry, but``,
``Unfortunately,``) and source phrase (``Based on the context,``, ``According to the
passage,``) is stripped, repeatedly. Trailing punctuation is stripped last.

Anchoring is what keeps real answers out:

* Sentence-like phrasings (``i dont know``, ``the context does not mention``,
  ``cannot be answered``, ``not enough information`` ...) must start the answer. A
  refusal later in the text (``"Paris, though I don't know for sure"``) is not an
  abstention: the model gave an answer.
* One-word or very short markers (``unknown``, ``n/a``, ``no answer``, ``unanswerable``,
  ``not mentioned``, ``not specified`` ...) count only when they are the whole answer or
  are followed by clause punctuation (``"Unknown."``, ``"Unknown - the passage ..."``), so
  ``"Unknown Pleasures"`` or ``"unknown or unexplored territory"`` are answers.
* ``none``, ``no``, ``unclear``, ``not known``, ``it is impossible`` and the like are
  deliberately *not* abstentions on their own: they are legitimate answers (SQuAD 2.0 dev
  has the gold answers ``"None"``, ``"unclear"`` and ``"it is impossible"``).

Official SQuAD exact match is unaffected by any of this: ``"I don't know."`` scores 0 on
an unanswerable question there. :func:`exact_match_with_abstention` and
:func:`f1_with_abstention` are the separate abstention-aware scores that treat an
abstention as the empty prediction.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import TypedDict

from harness.scoring.squad import exact_match, f1, is_unanswerable, normalize_answer

__all__ = [
    "ABSTENTION_PATTERNS",
    "ScoredAnswer",
    "exact_match_with_abstention",
    "f1_with_abstention",
    "is_abstention",
    "score_answer",
]

# Shared vocabulary for the patterns below (all on cleaned text: lower-case, no apostrophes).
_SOURCE = (
    r"(?:the |this |that |these |my )?(?:provided |given |supplied |above |available )?"
    r"(?:context|passage|text|document|documents|article|paragraph|source|sources|"
    r"information|excerpt|data|input)(?: provided| given| above)?"
)
_NEG = r"(?:does not|doesnt|do not|dont|did not|didnt|does no|fails to|is silent)"
_VERB = (
    r"(?:say|says|mention|mentions|provide|provides|contain|contains|specify|specifies|state|"
    r"include|give|indicate|answer|discuss|address|tell|explain|describe|have|offer|"
    r"reveal|list|cover|identify|name|clarify)"
)
# First person, after apostrophe removal ("I'm" is "im", "we're" is "were").
_SUBJECT = r"(?:i|we|im|i am|were|we are|i was|we were)"
_CANNOT = r"(?:cannot|can not|cant|could not|couldnt|unable to|not able to)"
_FIND = r"(?:answer|determine|find|tell|say|provide|locate|identify|know|confirm|infer|give)"
_INFO = r"(?:information|info|context|data|details|detail|knowledge|evidence)"
_STATED = (
    r"(?:mentioned|stated|specified|provided|given|available|included|known|found|"
    r"present|contained|addressed|discussed|indicated|disclosed|answerable)"
)

# Phrasings that must start the (cleaned) answer. Each is a full clause, long enough that
# an answer beginning with it is a refusal rather than a span of the passage.
_PREFIX_PATTERNS: tuple[str, ...] = (
    r"i (?:really )?(?:dont|do not|did not|didnt) know\b",
    r"(?:i|we) (?:dont|do not|did not|didnt) have (?:enough |sufficient |the |any |that |this )?"
    + _INFO,
    r"(?:i|we) (?:have|had) no (?:idea|information|knowledge|way of knowing)\b",
    _SUBJECT + " " + _CANNOT + r" (?:\w+ )?" + _FIND + r"\b",
    r"(?:i|we) (?:could not|couldnt|cannot|cant|did not|didnt) (?:find|locate|see)\b",
    r"(?:it|this) " + _CANNOT + " " + _FIND + r"\b",
    r"(?:it is|its) (?:not possible|impossible) to " + _FIND + r"\b",
    r"(?:it is|its) (?:unclear|not clear) (?:from|based on|according to|in)\b",
    _SOURCE + r" " + _NEG + r"(?: \w+)? " + _VERB + r"\b",
    _SOURCE + r" (?:makes|made|has|gives|provides|contains) no (?:mention|information|reference)",
    r"(?:the |this |that |your )?(?:question|answer) (?:cannot|can not|cant|could not|couldnt) "
    r"be (?:answered|determined|found|inferred)",
    r"(?:it |this |that )?(?:cannot|can not|cant|could not|couldnt) be (?:answered|determined)",
    r"(?:the |an )?answer (?:is|was) not " + _STATED + r"\b",
    r"(?:the |an )?answer (?:is|was) (?:unknown|unclear|not in)\b",
    r"(?:the |this |that |such )?(?:information|detail|details) (?:is|are|was|were) not "
    + _STATED
    + r"\b",
    r"(?:this|that) (?:is|was) not " + _STATED + r" in\b",
    r"(?:there is|theres|there are) no (?:answer|information|mention|data|details|"
    r"relevant|indication|way to (?:know|tell|determine))\b",
    r"(?:there is |theres )?(?:not enough|insufficient|no sufficient) " + _INFO + r"\b",
    r"no (?:answer|information|mention|relevant information) (?:is |was )?(?:available|"
    r"provided|given|found|mentioned|in)\b",
    r"not " + _STATED + r" in (?:the |this )?(?:context|passage|text|document|article|source)",
    r"(?:this |the )?question is (?:unanswerable|not answerable)\b",
)

# Short markers that count only as the whole answer, or when followed by clause punctuation
# ("Unknown.", "N/A - not in the text"), never as the first words of a longer phrase.
_SHORT_MARKERS: tuple[str, ...] = (
    r"unknown",
    r"n ?/ ?a",
    r"n\.a",
    r"no answer",
    r"no answer (?:found|available|given|provided)",
    r"unanswerable",
    r"not answerable",
    r"no idea",
    r"idk",
    r"no information",
    r"no info",
    r"not mentioned",
    r"not stated",
    r"not specified",
    r"not provided",
    r"not given",
    r"not available",
    r"not enough info",
    r"cannot answer",
    r"cant answer",
    r"cannot be determined",
    r"cant be determined",
    r"(?:i am|im) not sure",
    r"not sure",
    r"no comment",
)

#: Every pattern, as matched against the cleaned answer (see the module docstring).
ABSTENTION_PATTERNS: tuple[str, ...] = _PREFIX_PATTERNS + tuple(
    marker + r"(?=$|\s*[.,;:!?()\[\]/\u2013\u2014-])" for marker in _SHORT_MARKERS
)
_ABSTENTION_RE = re.compile("|".join(f"(?:{p})" for p in ABSTENTION_PATTERNS))

# Leading material that carries no answer and may wrap a refusal. Stripped repeatedly, so
# "Answer: Sorry, based on the context, I don't know" reduces to "i dont know".
_LEADING_NOISE = re.compile(
    r"^(?:"
    r"(?:final answer|short answer|answer|response|a)\s*:\s*"
    r"|(?:(?:i am|im) sorry|sorry|unfortunately|apologies|i apologi[sz]e)\b[\s,.!:;-]*(?:but\b)?\s*"
    r"|(?:based (?:on|upon)|according to|from|given|in) " + _SOURCE + r"\s*[,:]\s*"
    r"|(?:well|hmm|honestly)\s*[,.]\s*"
    r")"
)
_APOSTROPHES = str.maketrans({"\u2019": None, "\u2018": None, "'": None, "`": None})
_NOISE_CHARS = re.compile(r"[*_#>\"\u201c\u201d\u00ab\u00bb]")
_EDGE_PUNCTUATION = " \t\n.!?,;:-\u2013\u2014"


def _clean(text: str) -> str:
    """Lower-case and simplify ``text`` for pattern matching (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_APOSTROPHES)
    text = " ".join(_NOISE_CHARS.sub(" ", text).split())
    while True:
        stripped = _LEADING_NOISE.sub("", text, count=1).lstrip(_EDGE_PUNCTUATION)
        if stripped == text:
            break
        text = stripped
    return text.rstrip(_EDGE_PUNCTUATION)


def is_abstention(text: str) -> bool:
    """True if ``text`` declines to answer rather than giving an answer.

    Precisely: ``text`` normalises to the empty string under the official SQuAD rules
    (empty, whitespace, punctuation or a bare article), or its cleaned form *starts with*
    one of :data:`ABSTENTION_PATTERNS`, where the short markers (``unknown``, ``n/a``,
    ``no answer`` ...) must also be the whole answer or be followed by punctuation. See the
    module docstring for the clean-up and the reasoning behind the anchoring.
    """
    if not normalize_answer(text):
        return True
    return _ABSTENTION_RE.match(_clean(text)) is not None


def exact_match_with_abstention(prediction: str, references: Sequence[str]) -> float:
    """SQuAD exact match where an abstention counts as the empty prediction.

    Differs from :func:`harness.scoring.exact_match` only for abstentions: ``"I don't
    know."`` scores 1.0 on an unanswerable question (0.0 officially) and 0.0 on an
    answerable one (as officially).
    """
    return exact_match("" if is_abstention(prediction) else prediction, references)


def f1_with_abstention(prediction: str, references: Sequence[str]) -> float:
    """SQuAD token F1 where an abstention counts as the empty prediction."""
    return f1("" if is_abstention(prediction) else prediction, references)


class ScoredAnswer(TypedDict):
    """Per-answer scores returned by :func:`score_answer`."""

    exact_match: float
    """Official SQuAD 2.0 exact match (0.0 or 1.0)."""
    f1: float
    """Official SQuAD 2.0 token F1."""
    exact_match_with_abstention: float
    """Exact match with an abstention scored as the empty prediction."""
    f1_with_abstention: float
    """Token F1 with an abstention scored as the empty prediction."""
    abstained: bool
    """:func:`is_abstention` of the prediction."""
    answerable: bool
    """False if the references are empty or all normalise to empty (official rule)."""
    correct_abstention: bool
    """Abstained on an unanswerable question; always False for an answerable one."""


def score_answer(prediction: str, references: Sequence[str]) -> ScoredAnswer:
    """Score one answer officially and abstention-aware.

    ``correct_abstention`` is ``abstained and not answerable``, so a free-form
    ``"I don't know."`` on an unanswerable question is a correct abstention even though
    its official ``exact_match`` is 0.0.
    """
    abstained = is_abstention(prediction)
    answerable = not is_unanswerable(references)
    effective = "" if abstained else prediction
    return {
        "exact_match": exact_match(prediction, references),
        "f1": f1(prediction, references),
        "exact_match_with_abstention": exact_match(effective, references),
        "f1_with_abstention": f1(effective, references),
        "abstained": abstained,
        "answerable": answerable,
        "correct_abstention": abstained and not answerable,
    }
