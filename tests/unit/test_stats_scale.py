"""harness.stats at the sizes of a year of nightly runs: the fast paths against oracles.

The clustered bootstrap evaluated from draw counts must equal resampling the cases for
real, draw for draw; a percentile of many unclustered values has its bootstrap
distribution sampled from two order statistics (same law as resampling, checked with a
two-sample Kolmogorov–Smirnov test against real resamples) and its interval from the
binomial law of ranks (checked against scipy's binomial CDF and by coverage).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from harness import stats

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def oracle_ranks(n: int, q: float, confidence: float = 0.95) -> tuple[int | None, int | None]:
    """1-based ranks (l, u) from scipy's binomial CDF, by brute force over every k."""
    alpha = 1 - confidence
    cdf = scipy_stats.binom.cdf(np.arange(n + 1), n, q / 100)  # cdf[k] = P(B <= k)
    # largest l >= 1 with P(B <= l - 1) <= alpha / 2
    lows = [r for r in range(1, n + 1) if cdf[r - 1] <= alpha / 2]
    # smallest u <= n with P(B <= u - 1) >= 1 - alpha / 2
    highs = [r for r in range(1, n + 1) if cdf[r - 1] >= 1 - alpha / 2]
    return (max(lows) if lows else None, min(highs) if highs else None)


def test_order_statistic_interval_hand_worked() -> None:
    # n = 10, median: P(B <= 1) = 11/1024 = 0.0107 <= 0.025 < P(B <= 2) = 56/1024, so
    # l - 1 = 1, l = 2; P(B <= 7) = 968/1024 = 0.945 < 0.975 <= P(B <= 8) = 1013/1024,
    # so u - 1 = 8, u = 9: the interval is [x_(2), x_(9)], coverage 1 - 2 * 11/1024.
    values = np.array([7.0, 1.0, 9.0, 3.0, 5.0, 2.0, 10.0, 4.0, 8.0, 6.0])
    assert stats.order_statistic_interval(values, 50) == (2.0, 9.0)
    # n = 5: even [x_(1), x_(5)] covers the median with only 1 - 2/32 = 0.9375 < 0.95.
    low, high = stats.order_statistic_interval([1.0, 2.0, 3.0, 4.0, 5.0], 50)
    assert math.isnan(low) and math.isnan(high)
    # NaN values are dropped: the same 10 values.
    assert stats.order_statistic_interval([*values, math.nan], 50) == (2.0, 9.0)
    with pytest.raises(ValueError, match="q must be"):
        stats.order_statistic_interval(values, 100)


@SETTINGS
@given(st.integers(1, 3000), st.sampled_from([50.0, 90.0, 95.0, 99.0]), st.integers(0, 2**31))
def test_order_statistic_ranks_match_scipy(n: int, q: float, seed: int) -> None:
    values = np.random.default_rng(seed).normal(size=n)
    ordered = np.sort(values)
    low_rank, high_rank = oracle_ranks(n, q)
    low, high = stats.order_statistic_interval(values, q)
    assert math.isnan(low) if low_rank is None else low == ordered[low_rank - 1]
    assert math.isnan(high) if high_rank is None else high == ordered[high_rank - 1]


def test_order_statistic_interval_covers_at_least_95_percent() -> None:
    # 2,000 samples of 300 exponential values: the p90 is ln(10). Coverage must be at
    # least 95 % (exact for continuous data) up to Monte Carlo error (3 SE = 1.5 points),
    # and not absurdly conservative.
    rng = np.random.default_rng(7)
    truth = math.log(10)
    hits = 0
    for _ in range(2000):
        low, high = stats.order_statistic_interval(rng.exponential(size=300), 90)
        hits += low <= truth <= high
    assert 0.935 <= hits / 2000 <= 0.985


def test_percentile_ci_of_many_values_is_the_order_statistic_interval() -> None:
    values = np.random.default_rng(3).lognormal(size=5000)
    for q in (50, 99):
        assert stats.percentile_ci(values, q) == stats.order_statistic_interval(values, q)
    # Up to 2,000 values it is still the bootstrap of the values (test_stats_oracle).
    few = values[:2000]
    assert stats.percentile_ci(few, 50) != stats.order_statistic_interval(few, 50)


@pytest.mark.parametrize("q", [50.0, 95.0, 99.0])
def test_percentile_bootstrap_of_many_values_has_the_resampling_law(q: float) -> None:
    # 3,000 values with ties (rounded to 0.1): the order-statistic sampler and real
    # resampling draw from one distribution; a KS test of 4,000 draws each would see a
    # shift of a few percent of their spread.
    rng = np.random.default_rng(11)
    values = np.round(rng.gamma(2.0, 10.0, size=3000), 1)
    fast = stats.bootstrap_distribution(values, stats.Percentile(q), 4000, seed=1)
    picks = np.random.default_rng(2).integers(0, values.size, size=(4000, values.size))
    slow = np.percentile(values[picks], q, axis=1)
    # Rounded: an atom such as 72.7 + 0.01 * 1.0 may differ in its last bits between
    # the two computations, and KS would count two atoms where there is one.
    fast, slow = np.round(fast, 9), np.round(slow, 9)
    assert scipy_stats.ks_2samp(fast, slow).pvalue > 0.001
    assert np.percentile(fast, [2.5, 50, 97.5]) == pytest.approx(
        np.percentile(slow, [2.5, 50, 97.5]), rel=0.02
    )


@pytest.mark.parametrize("table_max", [4_000_000, 0])  # the count table, and the search
def test_clustered_percentile_from_counts_equals_resampling_cases(
    table_max: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 30 cases of 1 to 40 repeats each (unequal: the old path padded them with NaN).
    monkeypatch.setattr(stats, "_COUNT_TABLE_MAX", table_max)
    rng = np.random.default_rng(5)
    groups = [rng.lognormal(i % 5, 0.3, size=rng.integers(1, 41)) for i in range(30)]
    values = np.concatenate(groups)
    labels = np.concatenate([[i] * len(g) for i, g in enumerate(groups)])
    for q in (50.0, 95.0):
        got = stats.bootstrap_distribution(values, stats.Percentile(q), 300, 9, clusters=labels)
        picks = np.random.default_rng(9).integers(0, 30, size=(300, 30))
        naive = [np.percentile(np.concatenate([groups[j] for j in row]), q) for row in picks]
        np.testing.assert_allclose(got, naive, rtol=1e-12, atol=1e-12)
    mean = stats.bootstrap_distribution(values, np.mean, 300, 9, clusters=labels)
    picks = np.random.default_rng(9).integers(0, 30, size=(300, 30))
    naive = [np.mean(np.concatenate([groups[j] for j in row])) for row in picks]
    np.testing.assert_allclose(mean, naive, rtol=1e-9)


def test_string_and_integer_case_labels_cluster_alike() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=400)
    codes = np.arange(400) % 8
    names = np.array([f"case-{c}" for c in codes], dtype=object)
    by_code = stats.percentile_ci(values, 50, clusters=codes)
    assert by_code == stats.percentile_ci(values, 50, clusters=names)
