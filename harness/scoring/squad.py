"""SQuAD 2.0 scoring, reproducing the official ``evaluate-v2.0.py`` to the last digit.

The official script is the reference for every number here: answer normalisation,
token F1, the "max over references" rule, how unanswerable questions are scored, and
even the order in which per-question scores are summed (floating-point addition is not
associative, so summing in another order can change the last digit of the percentages).

Rules, as in the official script:

* ``normalize_answer``: lower-case, drop every character of ``string.punctuation``,
  replace the whole words ``a``/``an``/``the`` by a space, collapse whitespace.
* A question's gold answers are its reference texts that do not normalise to the empty
  string. If none is left (no references, or all are e.g. ``"."``), the question is
  treated as unanswerable and the only gold answer is ``""``: a prediction scores 1
  only if it, too, normalises to empty.
* Exact match and F1 are the maximum over the gold answers.
* F1 is the harmonic mean of token precision and recall over the multiset of common
  tokens; if either side has no tokens, F1 is 1 if both have none, else 0.
"""

from __future__ import annotations

import collections
import json
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

__all__ = [
    "MissingPredictionError",
    "evaluate_squad",
    "exact_match",
    "f1",
    "gold_answers",
    "is_unanswerable",
    "load_squad_file",
    "normalize_answer",
]

# The official script uses re.compile(r'\b(a|an|the)\b', re.UNICODE); re.UNICODE is the
# default for str patterns in Python 3, so the flag changes nothing but is kept verbatim.
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
# str.translate with a delete-table gives the same result as the official
# ''.join(ch for ch in text if ch not in set(string.punctuation)), several times faster.
_DELETE_PUNCTUATION = str.maketrans("", "", string.punctuation)


class MissingPredictionError(KeyError):
    """Raised by :func:`evaluate_squad` when questions have no prediction.

    The official script prints ``Missing prediction for <qid>`` and skips the question
    when computing raw scores, but then crashes with a ``KeyError`` while computing the
    HasAns/NoAns breakdowns (every question belongs to one of them). It therefore never
    prints scores for an incomplete prediction file, and neither do we by default.
    """

    def __init__(self, missing: Sequence[str]) -> None:
        self.missing: list[str] = list(missing)
        shown = ", ".join(self.missing[:5]) + (", ..." if len(self.missing) > 5 else "")
        super().__init__(f"{len(self.missing)} question(s) have no prediction: {shown}")

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message and add quotes.
        return str(self.args[0])


def normalize_answer(text: str) -> str:
    """Normalise an answer exactly as the official SQuAD script does.

    Lower-case, remove ASCII punctuation (``string.punctuation``), replace the articles
    ``a``, ``an`` and ``the`` (whole words) by spaces, and collapse runs of whitespace.
    """
    text = text.lower().translate(_DELETE_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _normalized_golds(references: Iterable[str]) -> list[str]:
    # Normalised gold answers by the official rule: references that normalise to empty are
    # dropped, and with none left the question is unanswerable, gold [""].
    golds = [norm for norm in map(normalize_answer, references) if norm]
    return golds or [""]


def _score(prediction: str, references: Iterable[str]) -> tuple[int, float]:
    """(exact match, F1) of one prediction, as the official get_raw_scores computes them.

    The official script re-normalises the prediction for every gold answer and for EM and
    F1 separately; normalising each string once gives identical values, since its
    ``get_tokens(s)`` is ``normalize_answer(s).split()`` (``[]`` for ``""`` either way).
    """
    norm_pred = normalize_answer(prediction)
    pred_toks = norm_pred.split()
    pred_counts: collections.Counter[str] | None = None
    best_exact = 0
    best_f1 = 0.0
    for gold in _normalized_golds(references):
        if gold == norm_pred:
            best_exact = 1
        gold_toks = gold.split()
        if not gold_toks or not pred_toks:
            # If either is no-answer, F1 is 1 if they agree, 0 otherwise.
            score = float(gold_toks == pred_toks)
        else:
            if pred_counts is None:
                pred_counts = collections.Counter(pred_toks)
            num_same = sum((collections.Counter(gold_toks) & pred_counts).values())
            if num_same == 0:
                score = 0.0
            else:
                # Same operations in the same order as the official compute_f1, so the
                # float result is bit-for-bit identical.
                precision = 1.0 * num_same / len(pred_toks)
                recall = 1.0 * num_same / len(gold_toks)
                score = (2 * precision * recall) / (precision + recall)
        best_f1 = max(best_f1, score)
    return best_exact, best_f1


def gold_answers(references: Iterable[str]) -> list[str]:
    """Return the gold answers the official script scores against.

    References that normalise to the empty string are dropped; if none is left the
    question is unanswerable and the result is ``[""]``.
    """
    golds = [ref for ref in references if normalize_answer(ref)]
    return golds or [""]


def is_unanswerable(references: Iterable[str]) -> bool:
    """True if the official scorer treats a question with these references as unanswerable.

    That is: there are no references, or every reference normalises to the empty string.
    """
    return _normalized_golds(references) == [""]


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """Official SQuAD 2.0 exact match of ``prediction`` against ``references``: 0.0 or 1.0.

    The maximum over the gold answers of "normalised strings are equal". With no usable
    reference (unanswerable), 1.0 only for a prediction that normalises to empty.
    """
    norm_pred = normalize_answer(prediction)
    return float(any(gold == norm_pred for gold in _normalized_golds(references)))


def f1(prediction: str, references: Sequence[str]) -> float:
    """Official SQuAD 2.0 token F1 of ``prediction`` against ``references``, in [0, 1].

    The maximum over the gold answers of the bag-of-tokens F1 after normalisation. With no
    usable reference (unanswerable), 1.0 only for a prediction that normalises to empty.
    """
    return _score(prediction, references)[1]


def load_squad_file(path: str | PathLike[str]) -> dict[str, Any]:
    """Load a SQuAD-format JSON file (``{"version": ..., "data": [...]}``)."""
    with Path(path).open(encoding="utf-8") as fh:
        loaded = json.load(fh)
    if not isinstance(loaded, dict) or not isinstance(loaded.get("data"), list):
        raise ValueError(f"{path}: not a SQuAD dataset (expected an object with a 'data' list)")
    return loaded


def _articles(dataset: Mapping[str, Any] | Sequence[Any]) -> Sequence[Any]:
    # Accept the whole file ({"data": [...]}) as well as the bare article list that the
    # official script passes around internally.
    if isinstance(dataset, Mapping):
        articles = dataset["data"]
        if not isinstance(articles, list):
            raise ValueError("dataset['data'] must be a list of articles")
        return articles
    return dataset


def _naive_sum(values: Iterable[float]) -> float:
    """Left-to-right float addition, as the built-in ``sum`` did up to Python 3.11.

    Python 3.12 switched ``sum`` of floats to compensated (Neumaier) summation, which
    changes the last digits of the official percentages (on the dev-half oracle, F1
    68.35807854215484 becomes 68.3580785421552). The reference numbers come from the
    plain loop, so we spell it out to get them on every Python version.
    """
    total = 0.0
    for value in values:
        total += value
    return total


def _make_eval(
    exact: Mapping[str, float], f1s: Mapping[str, float], qids: Sequence[str] | None = None
) -> dict[str, float | int]:
    # Mirrors the official make_eval_dict: 100.0 * sum(...) / total, summing the scores in
    # dataset order (not a mean, not math.fsum) so that rounding matches digit for digit.
    keys = list(exact) if qids is None else list(qids)
    total = len(keys)
    return {
        "exact": 100.0 * _naive_sum(exact[k] for k in keys) / total,
        "f1": 100.0 * _naive_sum(f1s[k] for k in keys) / total,
        "total": total,
    }


def evaluate_squad(
    dataset: Mapping[str, Any] | Sequence[Any],
    predictions: Mapping[str, str],
    *,
    skip_missing: bool = False,
) -> dict[str, float | int]:
    """Score ``predictions`` (question id -> answer text) as ``evaluate-v2.0.py`` does.

    ``dataset`` is a loaded SQuAD file (see :func:`load_squad_file`) or its ``data`` list.
    Returns the dict the official script prints without a no-answer-probability file:
    ``exact``, ``f1``, ``total``, then ``HasAns_exact``, ``HasAns_f1``, ``HasAns_total``
    (only if some question has answers) and ``NoAns_*`` (only if some has none). Scores
    are percentages; totals are ints.

    HasAns/NoAns follow the official split on whether a question's ``answers`` list is
    non-empty, even in the corner case where every answer normalises to empty (such a
    question is HasAns but scored as unanswerable, exactly as the official script does).

    Missing predictions: the official script skips them in the raw scores, and the overall
    ``total`` is the number of questions scored, but its HasAns/NoAns breakdown then fails
    with ``KeyError``. By default this function raises :class:`MissingPredictionError`
    (a ``KeyError``) listing them. With ``skip_missing=True`` the missing questions are left
    out of every figure, overall and breakdowns alike (an extension; the overall figures are
    what the official script computes before it crashes).
    """
    # Dicts keyed by qid, filled in dataset order, replicate the official data structures:
    # with duplicate ids the first position is kept and the last value wins, as there.
    qid_to_has_ans: dict[str, bool] = {}
    exact_scores: dict[str, float] = {}
    f1_scores: dict[str, float] = {}
    missing: list[str] = []
    for article in _articles(dataset):
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                qid = qa["id"]
                answers = qa["answers"]
                qid_to_has_ans[qid] = bool(answers)
                if qid not in predictions:
                    missing.append(qid)
                    continue
                exact_scores[qid], f1_scores[qid] = _score(
                    predictions[qid], (a["text"] for a in answers)
                )

    if missing and not skip_missing:
        raise MissingPredictionError(missing)
    if not exact_scores:
        raise ValueError("no question could be scored (empty dataset or no predictions)")

    has_ans = [k for k, v in qid_to_has_ans.items() if v and k in exact_scores]
    no_ans = [k for k, v in qid_to_has_ans.items() if not v and k in exact_scores]
    result = _make_eval(exact_scores, f1_scores)
    # The official script tests `if has_ans_qids:` before each breakdown, hence the omission
    # of a group with no questions.
    for prefix, qids in (("HasAns", has_ans), ("NoAns", no_ans)):
        if qids:
            for key, value in _make_eval(exact_scores, f1_scores, qids).items():
                result[f"{prefix}_{key}"] = value
    return result
