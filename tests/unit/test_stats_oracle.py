"""harness.scoring.stats against scipy and numpy as oracles, and the repeats-as-evidence rule.

scipy is a dev dependency only: the package never imports it. Hypothesis draws random
tables; the hand-worked cases say their arithmetic in a comment.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from harness.report.summary import paired_quality, summarize
from harness.scoring import stats

from .test_decide import frame, latency_rows, rag_rows

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- exact tests


@SETTINGS
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_binomial_half_matches_scipy(kn: tuple[int, int]) -> None:
    k, n = kn
    assert stats.binomial_test(k, n) == pytest.approx(
        scipy_stats.binomtest(k, n, 0.5).pvalue, rel=1e-9, abs=1e-300
    )


@SETTINGS
@given(
    st.integers(1, 200).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.floats(0.01, 0.99),
)
def test_binomial_any_p_matches_scipy(kn: tuple[int, int], p: float) -> None:
    k, n = kn
    expected = scipy_stats.binomtest(k, n, p).pvalue
    assert stats.binomial_test(k, n, p) == pytest.approx(expected, rel=1e-6, abs=1e-12)


@SETTINGS
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=0, max_size=400))
def test_mcnemar_is_the_exact_binomial_of_discordant_pairs(pairs: list[tuple[bool, bool]]) -> None:
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    result = stats.mcnemar(a, b)
    b01 = sum(1 for x, y in pairs if not x and y)
    b10 = sum(1 for x, y in pairs if x and not y)
    assert (result["b01"], result["b10"], result["n"]) == (b01, b10, b01 + b10)
    expected = scipy_stats.binomtest(b01, b01 + b10, 0.5).pvalue if b01 + b10 else 1.0
    assert result["p_value"] == pytest.approx(expected, rel=1e-9, abs=1e-300)


@SETTINGS
@given(
    st.integers(0, 120).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.integers(0, 120).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
)
def test_fisher_matches_scipy(a: tuple[int, int], b: tuple[int, int]) -> None:
    (ea, na), (eb, nb) = a, b
    table = [[ea, na - ea], [eb, nb - eb]]
    expected = scipy_stats.fisher_exact(table).pvalue if na and nb else 1.0
    if math.isnan(expected):  # scipy: a margin of 0 leaves nothing to test
        expected = 1.0
    assert stats.fisher_exact(ea, na, eb, nb) == pytest.approx(expected, rel=1e-6, abs=1e-12)


@SETTINGS
@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_matches_scipy(kn: tuple[int, int]) -> None:
    k, n = kn
    ci = scipy_stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    low, high = stats.wilson_interval(k, n, 0.95)
    assert low == pytest.approx(ci.low, abs=1e-9)
    assert high == pytest.approx(ci.high, abs=1e-9)


def test_exact_tests_hand_worked() -> None:
    # b = 3, c = 0: 2 * 0.5^3 = 0.25, in exact arithmetic.
    assert stats.binomial_test(3, 3) == 0.25
    assert stats.binomial_test(0, 3) == 0.25
    # b = c: 2 * P(X <= n/2) > 1, capped: p = 1 exactly, whatever n.
    for n in (2, 26, 200):
        assert stats.binomial_test(n // 2, n) == 1.0
    assert stats.binomial_test(0, 0) == 1.0
    # Fisher, 0 of 10 vs 3 of 10 errors: the tables with x = 0 or 3 errors in A are as
    # unlikely as the observed one: (C(10,0)C(10,3) + C(10,3)C(10,0)) / C(20,3) = 240/1140.
    assert stats.fisher_exact(0, 10, 3, 10) == pytest.approx(240 / 1140, rel=1e-12)
    with pytest.raises(ValueError):
        stats.binomial_test(4, 3)
    with pytest.raises(ValueError):
        stats.fisher_exact(11, 10, 0, 10)


def test_agresti_min_lower_bound_hand_worked() -> None:
    # 8 pairs all +1: with the pseudo-pairs, mean = 8 / 10 = 0.8, second moment
    # (8 + 1) / 10 = 0.9, variance (0.9 - 0.64) / 10 = 0.026; bound 0.8 - z * sqrt(0.026).
    z = 1.6448536269514722  # one-sided 95 %
    assert stats.agresti_min_lower_bound([1.0] * 8, 0.95) == pytest.approx(
        0.8 - z * math.sqrt(0.026), rel=1e-12
    )


# --------------------------------------------------------------------------- bootstrap


@SETTINGS
@given(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=60),
    st.sampled_from([50.0, 90.0, 95.0, 99.0]),
    st.integers(0, 2**32 - 1),
)
def test_percentile_ci_is_numpy_percentile_of_resamples(
    values: list[float], q: float, seed: int
) -> None:
    arr = np.asarray(values)
    rng = np.random.default_rng(seed)
    boot = np.percentile(arr[rng.integers(0, arr.size, size=(500, arr.size))], q, axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    got = stats.percentile_ci(arr, q, n_resamples=500, seed=seed)
    assert got == pytest.approx((low, high), rel=1e-12, abs=1e-9)


clustered = st.lists(
    st.lists(st.floats(0.0, 500.0, allow_nan=False), min_size=1, max_size=6),
    min_size=2,
    max_size=12,
)


@SETTINGS
@given(clustered, st.sampled_from([50.0, 95.0]), st.integers(0, 2**32 - 1))
def test_clustered_bootstrap_resamples_whole_cases(
    groups: list[list[float]], q: float, seed: int
) -> None:
    values = np.concatenate([np.asarray(g) for g in groups])
    labels = np.concatenate([[f"case-{i}"] * len(g) for i, g in enumerate(groups)])
    got = stats.bootstrap_distribution(values, stats.Percentile(q), 200, seed, clusters=labels)
    # Naive oracle: draw k case indices per resample, pool those cases' values.
    rng = np.random.default_rng(seed)
    k = len(groups)
    picks = rng.integers(0, k, size=(200, k))
    if max(len(g) for g in groups) == 1:
        expected = np.percentile(values[picks], q, axis=1)
    else:
        expected = np.array(
            [np.percentile(np.concatenate([groups[j] for j in row]), q) for row in picks]
        )
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)
    mean = stats.bootstrap_distribution(values, np.mean, 200, seed, clusters=labels)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, k, size=(200, k))
    if max(len(g) for g in groups) > 1:
        naive = [np.mean(np.concatenate([groups[j] for j in row])) for row in picks]
        np.testing.assert_allclose(mean, naive, rtol=1e-9, atol=1e-9)


def test_clustering_needs_two_cases_and_a_repeat() -> None:
    values = np.arange(20, dtype=float)
    plain = stats.bootstrap_distribution(values, np.mean, 300, 4)
    # One case: nothing to resample between, so requests are the unit.
    one_case = stats.bootstrap_distribution(values, np.mean, 300, 4, clusters=["a"] * 20)
    # One value per case: the clustered bootstrap is the plain one.
    singletons = stats.bootstrap_distribution(values, np.mean, 300, 4, clusters=range(20))
    np.testing.assert_array_equal(plain, one_case)
    np.testing.assert_array_equal(plain, singletons)
    with pytest.raises(ValueError, match="label every value"):
        stats.bootstrap_distribution(values, clusters=["a"])


def test_repeats_do_not_narrow_the_percentile_interval() -> None:
    # 10 cases, each measured 5 times with the same value. Clustered, a resample draws 10
    # cases and the pooled sample is each drawn value 5 times: its median sits between
    # the same two order statistics as the median of the 10 values ((50-1)/2 = 24.5 ->
    # positions 24 and 25 of 50 are groups 4 and 5; (10-1)/2 = 4.5 -> 4 and 5), and the
    # draws of case indices are the same, so the interval is exactly that of 10 values.
    per_case_values = np.array([12.0, 15.0, 11.0, 30.0, 22.0, 18.0, 25.0, 14.0, 40.0, 20.0])
    rows = np.repeat(per_case_values, 5)
    cases = np.repeat(np.arange(10), 5)
    ten = stats.percentile_ci(per_case_values, 50, seed=3)
    clustered_ci = stats.percentile_ci(rows, 50, seed=3, clusters=cases)
    assert clustered_ci == ten
    naive = stats.percentile_ci(rows, 50, seed=3)  # rows as if independent: too narrow
    assert naive[1] - naive[0] < ten[1] - ten[0]


# --------------------------------------------------------------------------- repeats


def repeated(repeats: int) -> pd.DataFrame:
    """10 cases; B answers cases 0–2 right, A none; both deterministic over repeats."""
    good = [i < 3 for i in range(10)]
    return frame(
        rag_rows("a", [False] * 10, repeats=repeats) + rag_rows("b", good, repeats=repeats)
    )


def test_ten_cases_five_repeats_three_discordant_is_p_quarter() -> None:
    rows = repeated(5)
    wide = stats.per_case(rows, "exact_match_abstain", "provider")
    assert wide.shape == (10, 2)  # one value per case, not per (case, repeat)
    result = stats.mcnemar((wide["a"] >= 0.5).tolist(), (wide["b"] >= 0.5).tolist())
    # b = 3, c = 0 cases: 2 * 0.5^3 = 0.25.
    assert (result["b01"], result["b10"], result["p_value"]) == (3, 0, 0.25)
    # Counting case × repeat would claim 15 discordant pairs: 2 * 0.5^15 ~ 6.1e-5.
    naive = stats.mcnemar(
        (rows[rows.provider == "a"]["exact_match_abstain"] >= 0.5).tolist(),
        (rows[rows.provider == "b"]["exact_match_abstain"] >= 0.5).tolist(),
    )
    assert naive["p_value"] == 2 * 0.5**15
    pairs = paired_quality(rows)
    assert pairs["n"].tolist() == [10]
    assert pairs["p_mcnemar"].tolist() == [0.25]
    assert pairs["verdict"].tolist() == ["no significant difference"]


def test_repeats_change_no_paired_result_or_quality_interval() -> None:
    once, five = repeated(1), repeated(5)
    columns = ["n", "diff", "diff_ci_low", "diff_ci_high", "p_bootstrap", "p_mcnemar"]
    pd.testing.assert_frame_equal(paired_quality(once)[columns], paired_quality(five)[columns])
    quality = ["exact_match_abstain", "exact_match_abstain_ci_low", "exact_match_abstain_ci_high"]
    pd.testing.assert_frame_equal(
        summarize(once)[quality].reset_index(drop=True),
        summarize(five)[quality].reset_index(drop=True),
    )


def test_compare_paired_needs_both_tests() -> None:
    # 4 of 10 cases one way: a resample misses all four with probability 0.6^10 = 0.6 %,
    # so the bootstrap interval excludes 0; the exact p is 2 * 0.5^4 = 0.125.
    a = [0.0] * 10
    b = [1.0] * 4 + [0.0] * 6
    result = stats.compare_paired(b, a)
    assert result["ci_low"] > 0 and result["p_exact"] == 0.125
    assert not result["significant"] and result["test"] == "McNemar"
    # 12 of 40 cases one way: 2 * 0.5^12 = 0.00049, and the interval excludes 0.
    many = stats.compare_paired([1.0] * 12 + [0.0] * 28, [0.0] * 40)
    assert many["p_exact"] == 2 * 0.5**12 and many["significant"]
    partial = stats.compare_paired([0.4, 0.6, 1.0], [0.2, 0.6, 0.0])
    assert partial["test"] == "sign test" and (partial["b01"], partial["b10"]) == (0, 2)


def test_summary_percentile_interval_clusters_repeats() -> None:
    # Latency rows of test_decide: case c{i % 10}, repeat i // 10. Each case's two
    # repeats get the same TTFT, so (as above: (20-1)/2 = 9.5 and (10-1)/2 = 4.5 pick the
    # same two cases) resampling cases gives exactly the interval of the 10 values.
    per_case_ms = [12.0, 15.0, 11.0, 30.0, 22.0, 18.0, 25.0, 14.0, 40.0, 20.0]
    rows = frame(latency_rows("p", n=20, ttft_ms=per_case_ms * 2))
    line = summarize(rows).iloc[0]
    interval = (line["ttft_p50_ms_ci_low"], line["ttft_p50_ms_ci_high"])
    assert interval == pytest.approx(stats.percentile_ci(np.array(per_case_ms), 50, seed=0))
    rows_as_independent = stats.percentile_ci(np.array(per_case_ms * 2), 50, seed=0)
    assert interval[1] - interval[0] > rows_as_independent[1] - rows_as_independent[0]
