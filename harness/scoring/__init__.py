"""Scoring for the RAG QA suite.

* Official SQuAD 2.0 metrics, identical to ``evaluate-v2.0.py`` to the last digit:
  :func:`exact_match`, :func:`f1`, :func:`normalize_answer`, and :func:`evaluate_squad`
  for a whole prediction file (:func:`load_squad_file` reads the dataset).
* Abstention: :func:`is_abstention` recognises empty answers and anchored refusals
  ("I don't know", "The context does not mention ..."); :func:`score_answer` reports the
  official scores alongside abstention-aware ones (:func:`exact_match_with_abstention`,
  :func:`f1_with_abstention`), which treat an abstention as the empty prediction.
* Statistics (:mod:`harness.stats`, the one place every report takes them from):
  :func:`bootstrap_ci` (clustered by case when asked), :func:`paired_bootstrap`,
  :func:`mcnemar` (exact), :func:`fisher_exact`, :func:`per_case` and
  :func:`compare_paired`.

Only the names below are public; the submodules' other names may change.
"""

from harness.scoring.abstention import (
    ScoredAnswer,
    exact_match_with_abstention,
    f1_with_abstention,
    is_abstention,
    score_answer,
)
from harness.scoring.squad import (
    MissingPredictionError,
    evaluate_squad,
    exact_match,
    f1,
    is_unanswerable,
    load_squad_file,
    normalize_answer,
)
from harness.stats import (
    McNemarResult,
    PairedBootstrapResult,
    PairedComparison,
    bootstrap_ci,
    compare_paired,
    fisher_exact,
    mcnemar,
    paired_bootstrap,
    per_case,
)

__all__ = [
    "McNemarResult",
    "MissingPredictionError",
    "PairedBootstrapResult",
    "PairedComparison",
    "ScoredAnswer",
    "bootstrap_ci",
    "compare_paired",
    "evaluate_squad",
    "exact_match",
    "exact_match_with_abstention",
    "f1",
    "f1_with_abstention",
    "fisher_exact",
    "is_abstention",
    "is_unanswerable",
    "load_squad_file",
    "mcnemar",
    "normalize_answer",
    "paired_bootstrap",
    "per_case",
    "score_answer",
]
