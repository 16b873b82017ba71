"""Scoring throughput on the SQuAD 2.0 dev-half oracle (6,078 questions).

Run from the repository root:  .venv/bin/python benchmarks/scoring_throughput.py

Prints questions scored per second for

* ``evaluate_squad``: the whole file, official aggregation included;
* ``exact_match + f1``: the public per-answer functions called once each per question;
* a baseline: a minimal loop written the way the official script computes scores
  (punctuation set and regex rebuilt on every call, character-by-character filtering),
  to show what the faster normalisation buys.

The best of several repeats is reported, to damp noise from other processes.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.scoring import evaluate_squad, exact_match, f1, load_squad_file

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad-v2"


def _baseline_normalize(s: str) -> str:
    # Deliberately naive, like the reference script: everything rebuilt per call.
    exclude = set(string.punctuation)
    s = "".join(ch for ch in s.lower() if ch not in exclude)
    s = re.sub(re.compile(r"\b(a|an|the)\b", re.UNICODE), " ", s)
    return " ".join(s.split())


def _baseline_f1(gold: str, pred: str) -> float:
    gold_toks = _baseline_normalize(gold).split() if gold else []
    pred_toks = _baseline_normalize(pred).split() if pred else []
    if not gold_toks or not pred_toks:
        return float(gold_toks == pred_toks)
    same = sum((collections.Counter(gold_toks) & collections.Counter(pred_toks)).values())
    if same == 0:
        return 0.0
    precision = same / len(pred_toks)
    recall = same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def _baseline(cases: list[tuple[str, list[str]]]) -> tuple[float, float]:
    em_total = f1_total = 0.0
    for pred, refs in cases:
        golds = [g for g in refs if _baseline_normalize(g)] or [""]
        em_total += max(float(_baseline_normalize(g) == _baseline_normalize(pred)) for g in golds)
        f1_total += max(_baseline_f1(g, pred) for g in golds)
    return em_total, f1_total


def _per_answer(cases: list[tuple[str, list[str]]]) -> tuple[float, float]:
    em_total = f1_total = 0.0
    for pred, refs in cases:
        em_total += exact_match(pred, refs)
        f1_total += f1(pred, refs)
    return em_total, f1_total


def _best_seconds(fn: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    if not DATA_DIR.is_dir():
        print(f"data not found: {DATA_DIR}", file=sys.stderr)
        return 1
    dataset = load_squad_file(DATA_DIR / "dev-v2.0-half.json")
    predictions: dict[str, str] = json.loads(
        (DATA_DIR / "dev-half-predictions.json").read_text(encoding="utf-8")
    )
    cases = [
        (predictions[qa["id"]], [a["text"] for a in qa["answers"]])
        for article in dataset["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]
    n = len(cases)
    # A speed comparison is only meaningful if both sides compute the same numbers.
    if _per_answer(cases) != _baseline(cases):
        print("exact_match/f1 disagree with the baseline", file=sys.stderr)
        return 1

    rows = [
        (
            "evaluate_squad",
            _best_seconds(lambda: evaluate_squad(dataset, predictions), args.repeats),
        ),
        ("exact_match + f1", _best_seconds(lambda: _per_answer(cases), args.repeats)),
        ("baseline (official-style)", _best_seconds(lambda: _baseline(cases), args.repeats)),
    ]
    baseline = rows[-1][1]
    print(f"{n} questions, best of {args.repeats} runs")
    for name, seconds in rows:
        print(
            f"{name:<28} {n / seconds:>10,.0f} cases/s  "
            f"{seconds * 1e3:8.1f} ms  x{baseline / seconds:.2f} vs baseline"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
