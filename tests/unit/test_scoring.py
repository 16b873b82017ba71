"""Tests for harness.scoring: official SQuAD 2.0 metrics, abstention, statistics."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import harness.scoring as scoring
from harness.scoring import (
    MissingPredictionError,
    bootstrap_ci,
    evaluate_squad,
    exact_match,
    exact_match_with_abstention,
    f1,
    f1_with_abstention,
    is_abstention,
    is_unanswerable,
    load_squad_file,
    mcnemar,
    normalize_answer,
    paired_bootstrap,
    score_answer,
)
from harness.scoring.squad import _naive_sum
from tests.conftest import TEST_DATA

# SQuAD 2.0 test data ships in the repository: tests/data/squad-v2 (CC BY-SA 4.0).
SQUAD_DIR = TEST_DATA / "squad-v2"


def _require_squad_dir() -> Path:
    # A missing data directory must fail loudly: skipping would hide that the oracle
    # check never ran.
    if not SQUAD_DIR.is_dir():
        pytest.fail(
            f"SQuAD 2.0 test data not found at {SQUAD_DIR}; it is expected in "
            "tests/data/squad-v2 of the repository"
        )
    return SQUAD_DIR


def test_squad_data_present() -> None:
    # Reported as a FAILED test (the data-backed tests below then ERROR in their fixtures).
    for name in (
        "dev-v2.0-half.json",
        "dev-half-predictions.json",
        "dev-half-predictions.official-scores.json",
        "sample-200.jsonl",
    ):
        assert (_require_squad_dir() / name).is_file(), f"missing {SQUAD_DIR / name}"


@pytest.fixture(scope="module")
def squad_dir() -> Path:
    return _require_squad_dir()


@pytest.fixture(scope="module")
def dev_half(squad_dir: Path) -> dict[str, Any]:
    return load_squad_file(squad_dir / "dev-v2.0-half.json")


@pytest.fixture(scope="module")
def dev_predictions(squad_dir: Path) -> dict[str, str]:
    loaded: dict[str, str] = json.loads(
        (squad_dir / "dev-half-predictions.json").read_text(encoding="utf-8")
    )
    return loaded


def _questions(dataset: dict[str, Any]) -> list[dict[str, Any]]:
    return [qa for art in dataset["data"] for par in art["paragraphs"] for qa in par["qas"]]


def _dataset(*qas: tuple[str, list[str]]) -> dict[str, Any]:
    """A one-paragraph SQuAD dataset from (qid, answer texts) pairs."""
    return {
        "version": "v2.0",
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "c",
                        "qas": [
                            {
                                "id": qid,
                                "question": "q",
                                "answers": [{"text": t, "answer_start": 0} for t in texts],
                            }
                            for qid, texts in qas
                        ],
                    }
                ],
            }
        ],
    }


# --- the official oracle -------------------------------------------------------------------


def test_oracle_reproduced_to_the_last_digit(
    squad_dir: Path, dev_half: dict[str, Any], dev_predictions: dict[str, str]
) -> None:
    official = json.loads(
        (squad_dir / "dev-half-predictions.official-scores.json").read_text(encoding="utf-8")
    )
    result = evaluate_squad(dev_half, dev_predictions)
    assert list(result) == list(official)  # same keys, same order as the script prints
    for key, value in official.items():
        assert type(result[key]) is type(value), key
        assert repr(result[key]) == repr(value), key
        assert result[key] == value, key


def test_oracle_per_question_functions_agree_with_evaluate(
    dev_half: dict[str, Any], dev_predictions: dict[str, str]
) -> None:
    questions = _questions(dev_half)
    ems = [
        exact_match(dev_predictions[q["id"]], [a["text"] for a in q["answers"]]) for q in questions
    ]
    f1s = [f1(dev_predictions[q["id"]], [a["text"] for a in q["answers"]]) for q in questions]
    result = evaluate_squad(dev_half, dev_predictions)
    assert 100.0 * _naive_sum(ems) / len(ems) == result["exact"]
    assert 100.0 * _naive_sum(f1s) / len(f1s) == result["f1"]
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in ems + f1s)


def test_evaluate_accepts_the_bare_article_list(
    dev_half: dict[str, Any], dev_predictions: dict[str, str]
) -> None:
    assert evaluate_squad(dev_half["data"], dev_predictions) == evaluate_squad(
        dev_half, dev_predictions
    )


def test_gold_answers_score_perfectly_on_sample(squad_dir: Path) -> None:
    lines = (squad_dir / "sample-200.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 200
    for row in rows:
        refs = [a["text"] if isinstance(a, dict) else a for a in row["answers"]]
        assert is_unanswerable(refs) == row["is_impossible"]
        if row["is_impossible"]:
            assert exact_match("", refs) == f1("", refs) == 1.0
        else:
            for ref in refs:
                assert exact_match(ref, refs) == f1(ref, refs) == 1.0
            assert exact_match("", refs) == f1("", refs) == 0.0


def test_summation_is_left_to_right() -> None:
    # Python >= 3.12's sum() of floats is compensated and would give 1.0 here; the
    # official numbers were computed with plain left-to-right addition.
    assert _naive_sum([0.1] * 10) == 0.9999999999999999


# --- normalisation, EM and F1 --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Cat", "cat"),
        ("  a  cat   sat\non\tthe mat.", "cat sat on mat"),
        ("An apple, an orange!", "apple orange"),
        ("theory and anthem", "theory and anthem"),  # articles only as whole words
        ("the-end", "theend"),  # punctuation is deleted, not replaced by a space
        ("A.B.C.", "abc"),
        ("Rock 'n' roll", "rock n roll"),
        ("l'the", "lthe"),
        ("Dal\u00ed \u2013 1904", "dal\u00ed \u2013 1904"),  # only ASCII punctuation is removed
        ("ÉCOLE The", "école"),
        ("", ""),
        ("...", ""),
        ("the a an", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


@pytest.mark.parametrize(
    ("prediction", "references", "em", "f1_score"),
    [
        ("Paris", ["Paris"], 1.0, 1.0),
        ("the PARIS!!", ["Paris"], 1.0, 1.0),
        ("Paris, France", ["Paris"], 0.0, 2 * 0.5 * 1.0 / 1.5),
        ("cat sat", ["the cat sat on the mat"], 0.0, (2 * 1.0 * 0.5) / (1.0 + 0.5)),
        ("dog dog dog", ["dog"], 0.0, (2 * (1 / 3) * 1.0) / ((1 / 3) + 1.0)),
        ("dog dog", ["dog dog cat"], 0.0, (2 * 1.0 * (2 / 3)) / (1.0 + (2 / 3))),
        ("London", ["Paris"], 0.0, 0.0),
        ("Paris", ["London", "paris", "Rome"], 1.0, 1.0),
        # max over references for F1 too
        ("New York City", ["York", "New York City Hall", "Boston"], 0.0, 2 * 1.0 * 0.75 / 1.75),
        # unanswerable: no reference, or every reference normalises to empty
        ("", [], 1.0, 1.0),
        ("   ", [], 1.0, 1.0),
        (".", [], 1.0, 1.0),
        ("The", [], 1.0, 1.0),
        ("Paris", [], 0.0, 0.0),
        ("", [".", " the "], 1.0, 1.0),
        ("Paris", ["", "!"], 0.0, 0.0),
        ("I don't know.", [], 0.0, 0.0),  # official EM stays strict
        # empty references are dropped when a real one exists
        ("", ["", "Paris"], 0.0, 0.0),
        ("", ["Paris"], 0.0, 0.0),
    ],
)
def test_exact_match_and_f1(
    prediction: str, references: list[str], em: float, f1_score: float
) -> None:
    assert exact_match(prediction, references) == em
    assert f1(prediction, references) == f1_score
    assert type(exact_match(prediction, references)) is float
    assert type(f1(prediction, references)) is float


def test_references_may_be_any_sequence() -> None:
    assert exact_match("Paris", ("paris",)) == 1.0
    assert f1("Paris", ("paris",)) == 1.0


# --- evaluate_squad on small datasets ------------------------------------------------------


def test_evaluate_small_dataset_percentages() -> None:
    data = _dataset(("q1", ["Paris"]), ("q2", ["cat sat"]), ("q3", []), ("q4", []))
    preds = {"q1": "paris", "q2": "cat", "q3": "", "q4": "something"}
    result = evaluate_squad(data, preds)
    f1_q2 = (2 * 1.0 * 0.5) / 1.5
    assert result == {
        "exact": 100.0 * 2 / 4,
        "f1": 100.0 * (1.0 + f1_q2 + 1.0 + 0.0) / 4,
        "total": 4,
        "HasAns_exact": 100.0 * 1 / 2,
        "HasAns_f1": 100.0 * (1.0 + f1_q2) / 2,
        "HasAns_total": 2,
        "NoAns_exact": 50.0,
        "NoAns_f1": 50.0,
        "NoAns_total": 2,
    }


def test_evaluate_omits_empty_groups() -> None:
    only_answerable = evaluate_squad(_dataset(("q1", ["x"])), {"q1": "x"})
    assert list(only_answerable) == [
        "exact",
        "f1",
        "total",
        "HasAns_exact",
        "HasAns_f1",
        "HasAns_total",
    ]
    only_unanswerable = evaluate_squad(_dataset(("q1", [])), {"q1": "x"})
    assert list(only_unanswerable) == [
        "exact",
        "f1",
        "total",
        "NoAns_exact",
        "NoAns_f1",
        "NoAns_total",
    ]
    assert only_unanswerable["exact"] == 0.0


def test_evaluate_has_ans_split_follows_the_answers_list() -> None:
    # Official quirk: a question whose only answer is "." is HasAns (answers non-empty)
    # but scored as unanswerable, so the empty prediction is right.
    result = evaluate_squad(_dataset(("q1", ["."])), {"q1": ""})
    assert result == {
        "exact": 100.0,
        "f1": 100.0,
        "total": 1,
        "HasAns_exact": 100.0,
        "HasAns_f1": 100.0,
        "HasAns_total": 1,
    }


def test_evaluate_ignores_extra_predictions() -> None:
    result = evaluate_squad(_dataset(("q1", ["x"])), {"q1": "x", "other": "y"})
    assert result["total"] == 1
    assert result["exact"] == 100.0


def test_evaluate_missing_prediction_raises_like_the_official_script() -> None:
    data = _dataset(("q1", ["x"]), ("q2", []), ("q3", ["y"]))
    with pytest.raises(MissingPredictionError) as info:
        evaluate_squad(data, {"q1": "x"})
    assert info.value.missing == ["q2", "q3"]
    assert isinstance(info.value, KeyError)
    assert "q2" in str(info.value)


def test_evaluate_skip_missing_scores_only_predicted_questions() -> None:
    data = _dataset(("q1", ["x"]), ("q2", []), ("q3", ["y"]))
    result = evaluate_squad(data, {"q1": "x", "q2": "z"}, skip_missing=True)
    assert result == {
        "exact": 50.0,
        "f1": 50.0,
        "total": 2,  # the official overall total: len(exact_scores)
        "HasAns_exact": 100.0,
        "HasAns_f1": 100.0,
        "HasAns_total": 1,
        "NoAns_exact": 0.0,
        "NoAns_f1": 0.0,
        "NoAns_total": 1,
    }


def test_evaluate_nothing_to_score_raises() -> None:
    with pytest.raises(ValueError, match="no question"):
        evaluate_squad(_dataset(), {})
    with pytest.raises(ValueError, match="no question"):
        evaluate_squad(_dataset(("q1", ["x"])), {}, skip_missing=True)


def test_load_squad_file(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_dataset(("q1", ["x"]))), encoding="utf-8")
    assert load_squad_file(good)["data"][0]["paragraphs"][0]["qas"][0]["id"] == "q1"
    assert load_squad_file(str(good)) == load_squad_file(good)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"q1": "x"}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a SQuAD dataset"):
        load_squad_file(bad)


# --- abstention ----------------------------------------------------------------------------

ABSTENTIONS = [
    "",
    "   ",
    "\n\t",
    ".",
    "?",
    "The",
    "A",  # a bare article normalises to "" and is "no answer" to the official scorer too
    "I don't know.",
    "I don\u2019t know",  # typographic apostrophe
    "i dont know",
    "I do not know the answer to this question.",
    "I really don't know",
    "I'm sorry, but I don't know.",
    "Sorry, I do not know.",
    "Unfortunately, the context does not mention this.",
    "Answer: I don't know",
    "Final answer: unknown",
    "**I don't know.**",
    '"I don\'t know"',
    "Based on the provided context, I cannot determine the answer.",
    "According to the passage, it is not possible to determine who won.",
    "Unknown",
    "unknown.",
    "UNKNOWN - the passage does not say",
    "Unknown (not stated in the text)",
    "N/A",
    "n/a.",
    "N.A.",
    "No answer",
    "No answer found.",
    "Unanswerable",
    "This question is unanswerable based on the context.",
    "Not answerable",
    "Not mentioned in the context.",
    "Not mentioned",
    "Not stated in the passage",
    "Not specified.",
    "The context does not say.",
    "The context doesn't mention when the treaty was signed.",
    "The provided context does not provide information about his birthplace.",
    "The passage does not specify the year.",
    "The text doesn't contain that information.",
    "The given text does not explicitly state the number.",
    "The context makes no mention of the event.",
    "The question cannot be answered from the context.",
    "Cannot be answered from the given passage.",
    "This cannot be determined from the context.",
    "Cannot be determined",
    "The answer is not mentioned in the text.",
    "The answer is not provided in the context.",
    "That information is not provided in the passage.",
    "This is not mentioned in the context.",
    "There is no information about this in the context.",
    "There's no mention of a second battle.",
    "Not enough information.",
    "There is not enough information to answer.",
    "Insufficient information in the context.",
    "Insufficient context to answer",
    "No information is provided about the author.",
    "I cannot answer this question based on the context.",
    "I can't answer that from the passage.",
    "I am unable to determine the answer.",
    "I'm unable to find the answer in the context.",
    "I couldn't find the answer.",
    "I do not have enough information to answer.",
    "I have no idea.",
    "No idea",
    "idk",
    "I'm not sure.",
    "It is unclear from the context.",
]

ANSWERS = [
    "Paris",
    "1066",
    "William the Conqueror",
    "None",  # a real SQuAD gold answer
    "none of them",
    "no",
    "No.",
    "it is impossible",  # a real SQuAD gold answer
    "unclear",  # a real SQuAD gold answer
    "not known",
    "Unknown Pleasures",
    "unknown or unexplored territory",
    "The Tomb of the Unknown Soldier",
    "An unknown number of soldiers died.",
    "The cause remains unknown to historians, but most blame the drought.",
    "Paris. I don't know anything else about it.",
    "Paris, although the context does not say so directly.",
    "The answer is Paris.",
    "Based on the context, the answer is Paris.",
    "Na",  # sodium
    "NA",
    "Nat King Cole",
    "Not-for-profit consortium",
    "not uniform",
    "no French regular army",
    "there is no known polynomial-time solution",
    "I do not think myself obliged to obey",
    "It is possible that all these complexity classes collapse to one class",
    "Knowledge",
    "Idaho",
    "Unanimous",
    "Noah",
    "the information age",
    "context switching",
    "The context of the Cold War",
    "42",
]


@pytest.mark.parametrize("text", ABSTENTIONS)
def test_is_abstention_positive(text: str) -> None:
    assert is_abstention(text)


@pytest.mark.parametrize("text", ANSWERS)
def test_is_abstention_negative(text: str) -> None:
    assert not is_abstention(text)


def test_no_real_gold_answer_is_an_abstention(dev_half: dict[str, Any]) -> None:
    # Every gold and plausible answer of the dev half is a real answer, except the few
    # that the official scorer itself treats as empty (e.g. ".").
    texts = {
        a["text"]
        for q in _questions(dev_half)
        for a in q["answers"] + q.get("plausible_answers", [])
    }
    assert len(texts) > 5000
    flagged = sorted(t for t in texts if is_abstention(t) and normalize_answer(t))
    assert flagged == []


def test_abstention_agrees_with_official_empty(
    dev_half: dict[str, Any], dev_predictions: dict[str, str]
) -> None:
    # On unanswerable questions, abstaining is exactly what the abstention-aware EM rewards.
    for q in _questions(dev_half):
        refs = [a["text"] for a in q["answers"]]
        pred = dev_predictions[q["id"]]
        if not normalize_answer(pred):
            assert is_abstention(pred)
        if is_unanswerable(refs):
            assert (exact_match_with_abstention(pred, refs) == 1.0) == is_abstention(pred)


def test_score_answer_unanswerable_free_form_abstention() -> None:
    assert score_answer("I don't know.", []) == {
        "exact_match": 0.0,
        "f1": 0.0,
        "exact_match_with_abstention": 1.0,
        "f1_with_abstention": 1.0,
        "abstained": True,
        "answerable": False,
        "correct_abstention": True,
    }


def test_score_answer_other_cases() -> None:
    assert score_answer("", ["."]) == {
        "exact_match": 1.0,
        "f1": 1.0,
        "exact_match_with_abstention": 1.0,
        "f1_with_abstention": 1.0,
        "abstained": True,
        "answerable": False,
        "correct_abstention": True,
    }
    assert score_answer("Paris", []) == {
        "exact_match": 0.0,
        "f1": 0.0,
        "exact_match_with_abstention": 0.0,
        "f1_with_abstention": 0.0,
        "abstained": False,
        "answerable": False,
        "correct_abstention": False,
    }
    # Abstaining on an answerable question is never correct, and scores 0 both ways.
    assert score_answer("The context does not say.", ["Paris"]) == {
        "exact_match": 0.0,
        "f1": 0.0,
        "exact_match_with_abstention": 0.0,
        "f1_with_abstention": 0.0,
        "abstained": True,
        "answerable": True,
        "correct_abstention": False,
    }
    scored = score_answer("the Paris", ["Paris", "City of Paris"])
    assert scored["exact_match"] == scored["exact_match_with_abstention"] == 1.0
    assert scored["answerable"]
    assert not scored["abstained"]
    assert not scored["correct_abstention"]


def test_abstention_aware_scores_only_change_abstentions() -> None:
    assert exact_match_with_abstention("Unknown.", []) == 1.0
    assert exact_match_with_abstention("Unknown.", ["unknown"]) == 0.0
    assert exact_match_with_abstention("Paris", ["Paris"]) == 1.0
    assert f1_with_abstention("Paris France", ["Paris"]) == f1("Paris France", ["Paris"])
    assert f1_with_abstention("N/A", []) == 1.0


# --- statistics ----------------------------------------------------------------------------


def test_bootstrap_ci_hand_worked() -> None:
    # Constant data: every resample has the same mean.
    assert bootstrap_ci([0.5] * 10) == (0.5, 0.5, 0.5)
    assert bootstrap_ci([7.0]) == (7.0, 7.0, 7.0)
    # Two values: resample means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4, so the
    # 2.5% and 97.5% percentiles are the extremes.
    assert bootstrap_ci([0.0, 1.0], n_resamples=5000) == (0.5, 0.0, 1.0)


def test_bootstrap_ci_nan_and_empty() -> None:
    assert bootstrap_ci([1.0, math.nan, 3.0]) == bootstrap_ci([1.0, 3.0])
    for empty in ([], [math.nan, math.nan]):
        point, low, high = bootstrap_ci(empty)
        assert math.isnan(point)
        assert math.isnan(low)
        assert math.isnan(high)


def test_bootstrap_ci_is_deterministic_and_brackets_the_mean() -> None:
    rng = np.random.default_rng(42)
    values = rng.normal(10.0, 2.0, size=400)
    point, low, high = bootstrap_ci(values)
    assert bootstrap_ci(values) == (point, low, high)
    assert bootstrap_ci(values, seed=1) != (point, low, high)
    assert point == pytest.approx(float(np.mean(values)))
    assert low < point < high
    # Close to the normal-theory interval mean +- 1.96 * sd / sqrt(n) (width ~0.39).
    half_width = 1.96 * float(np.std(values, ddof=1)) / math.sqrt(values.size)
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.1)
    narrow = bootstrap_ci(values, confidence=0.5)
    assert low < narrow[1] < narrow[2] < high


def test_bootstrap_ci_custom_statistic_matches_vectorised() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert bootstrap_ci(values, stat=lambda x: float(np.mean(x))) == bootstrap_ci(values)
    assert bootstrap_ci(values, stat=lambda x: float(np.median(x))) == bootstrap_ci(
        values, stat=np.median
    )
    assert bootstrap_ci(values, stat=np.median)[0] == 3.0


def test_bootstrap_ci_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0], confidence=1.0)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci([1.0], n_resamples=0)


def test_paired_bootstrap_hand_worked() -> None:
    # A always better by exactly 1: every resampled mean difference is 1, none <= 0, so
    # p = 2 * (0 + 1) / (2000 + 1).
    result = paired_bootstrap([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0])
    assert result == {
        "mean_diff": 1.0,
        "ci_low": 1.0,
        "ci_high": 1.0,
        "p_value": 2 / 2001,
        "n": 4,
    }
    # Identical systems: every difference is 0, both tails are full, p = 1.
    same = paired_bootstrap([1.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    assert same == {"mean_diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0, "n": 3}


def test_paired_bootstrap_symmetry_nan_and_errors() -> None:
    rng = np.random.default_rng(7)
    a = rng.random(300)
    b = a - 0.05 + rng.normal(0.0, 0.1, size=300)
    ab = paired_bootstrap(a, b)
    ba = paired_bootstrap(b, a)
    assert ab["mean_diff"] == pytest.approx(-ba["mean_diff"])
    assert ab["ci_low"] == pytest.approx(-ba["ci_high"])
    assert ab["p_value"] == pytest.approx(ba["p_value"])
    assert 0 < ab["ci_low"] < ab["mean_diff"] < ab["ci_high"]
    assert ab["p_value"] < 0.01

    with_nan = paired_bootstrap([1.0, math.nan, 0.0, 1.0], [0.0, 1.0, math.nan, 1.0])
    assert with_nan["n"] == 2
    assert with_nan["mean_diff"] == 0.5

    empty = paired_bootstrap([], [])
    assert empty["n"] == 0
    assert math.isnan(empty["mean_diff"])
    assert math.isnan(empty["p_value"])
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap([1.0], [1.0, 2.0])


def _pairs(
    b01: int, b10: int, both_right: int = 3, both_wrong: int = 2
) -> tuple[list[bool], list[bool]]:
    a = [False] * b01 + [True] * b10 + [True] * both_right + [False] * both_wrong
    b = [True] * b01 + [False] * b10 + [True] * both_right + [False] * both_wrong
    return a, b


@pytest.mark.parametrize(
    ("b01", "b10", "p_value"),
    [
        (0, 0, 1.0),
        (1, 5, 2 * (1 + 6) / 64),  # 2 * P(X <= 1), X ~ Bin(6, 1/2) = 0.21875
        (0, 6, 2 / 64),
        (3, 3, 1.0),  # 2 * P(X <= 3) > 1, capped
        (2, 10, 2 * (1 + 12 + 66) / 4096),
        (24, 0, 2 / 2**24),  # largest n still exact
    ],
)
def test_mcnemar_exact(b01: int, b10: int, p_value: float) -> None:
    result = mcnemar(*_pairs(b01, b10))
    assert result == {
        "b01": b01,
        "b10": b10,
        "n": b01 + b10,
        "statistic": float(min(b01, b10)),
        "p_value": p_value,
        "method": "exact",
    }


@pytest.mark.parametrize(
    ("b01", "b10", "p_value"),
    [
        # b = c: no evidence either way, p = 1 (the corrected chi-square said 0.845).
        (13, 13, 1.0),
        (30, 30, 1.0),
        # Exact at every n now: 2 * P(X <= 10), X ~ Bin(30, 1/2).
        (10, 20, 2 * sum(math.comb(30, i) for i in range(11)) / 2**30),
        (20, 10, 2 * sum(math.comb(30, i) for i in range(11)) / 2**30),
        (40, 60, 2 * sum(math.comb(100, i) for i in range(41)) / 2**100),
    ],
)
def test_mcnemar_is_exact_for_many_discordant_pairs(b01: int, b10: int, p_value: float) -> None:
    result = mcnemar(*_pairs(b01, b10))
    assert result["method"] == "exact"
    assert (result["b01"], result["b10"], result["n"]) == (b01, b10, b01 + b10)
    assert result["statistic"] == float(min(b01, b10))
    assert result["p_value"] == pytest.approx(p_value, rel=1e-12)


def test_mcnemar_table_value() -> None:
    # 10 vs 20 discordant: the exact two-sided p is 0.0987 (tables: 0.098737), a little
    # below the corrected chi-square's 0.1003.
    assert mcnemar(*_pairs(10, 20))["p_value"] == pytest.approx(0.098737, abs=5e-7)


def test_mcnemar_length_mismatch() -> None:
    with pytest.raises(ValueError, match="same length"):
        mcnemar([True], [True, False])


# --- public API ----------------------------------------------------------------------------


def test_public_api_is_curated() -> None:
    assert sorted(scoring.__all__) == sorted(set(scoring.__all__))
    for name in scoring.__all__:
        assert hasattr(scoring, name), name
    for name in (
        "exact_match",
        "f1",
        "evaluate_squad",
        "load_squad_file",
        "is_abstention",
        "score_answer",
        "exact_match_with_abstention",
        "bootstrap_ci",
        "paired_bootstrap",
        "mcnemar",
    ):
        assert name in scoring.__all__
        assert getattr(scoring, name).__doc__
