"""Percentiles bootstrapped together (``stats.bootstrap_differences``, as ``diff`` compares
TTFT p50 and p95) are the arrays each percentile gives alone, bit for bit: the shared
sort, cluster counts and count table change no draw and no rank."""

from __future__ import annotations

import numpy as np
import pytest

from harness import stats
from harness.report.compare import independent, independent_percentiles


def clustered(seed: int, cases: int, repeats: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(cases), repeats)
    rng.shuffle(codes)
    # each case its own level, ties included (values rounded to 1 ms)
    values = np.round(rng.lognormal(3.0, 0.3, size=codes.size) + codes * 0.5)
    return values, codes


@pytest.mark.parametrize(
    ("cases", "repeats"),
    [
        (4, 500),  # few large clusters (a latency suite's prompts): the count table
        (48, 3),  # many small ones (a RAG suite's cases with repeats)
        (2_100, 2),  # a (values x clusters) table too large: the sorted-key search
    ],
)
def test_percentiles_together_are_each_percentile_alone(cases: int, repeats: int) -> None:
    a, cases_a = clustered(1, cases, repeats)
    b, cases_b = clustered(2, cases, repeats)
    b[::7] = np.nan  # missing values are dropped, with their case labels
    qs = (50.0, 95.0, 99.0)
    together = stats.bootstrap_differences(
        a, b, qs, clusters_a=cases_a, clusters_b=cases_b, n_resamples=300, seed=3
    )
    for q, got in zip(qs, together, strict=True):
        alone = stats.bootstrap_difference(
            a, b, stats.Percentile(q), clusters_a=cases_a, clusters_b=cases_b,
            n_resamples=300, seed=3,
        )  # fmt: skip
        assert got.shape == (300,)
        np.testing.assert_array_equal(got, alone)


def test_unclustered_and_empty_samples_fall_back_to_one_percentile_at_a_time() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(10, 1, 3_000), rng.normal(11, 1, 2_500)  # no clusters: order statistics
    together = stats.bootstrap_differences(a, b, (50.0, 90.0), n_resamples=200, seed=0)
    for q, got in zip((50.0, 90.0), together, strict=True):
        alone = stats.bootstrap_difference(a, b, stats.Percentile(q), n_resamples=200, seed=0)
        np.testing.assert_array_equal(got, alone)
    empty = stats.bootstrap_differences(np.array([np.nan]), b, (50.0, 95.0), n_resamples=10)
    assert [e.size for e in empty] == [0, 0]


def test_comparisons_together_are_the_comparisons_alone() -> None:
    a, cases_a = clustered(7, 6, 40)
    b, cases_b = clustered(8, 6, 40)
    b = b * 1.2  # B slower: p50 and p95 both move
    together = independent_percentiles(
        (a, cases_a), (b, cases_b), (50.0, 95.0), confidence=0.95, n_resamples=400, seed=0
    )
    for q, got in zip((50.0, 95.0), together, strict=True):
        alone = independent(
            (a, cases_a), (b, cases_b), stats.Percentile(q),
            confidence=0.95, n_resamples=400, seed=0, name=f"bootstrap (p{q:g})",
        )  # fmt: skip
        assert got == alone
    few = independent_percentiles(
        (a[:1], cases_a[:1]), (b, cases_b), (50.0,), confidence=0.95, n_resamples=10, seed=0
    )
    assert few[0].test == "too few values" and few[0].a == a[0]
