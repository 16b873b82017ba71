"""Confidence intervals and paired significance tests for per-question scores.

* :func:`bootstrap_ci`: percentile-bootstrap confidence interval of a statistic.
* :func:`paired_bootstrap`: paired bootstrap of the mean difference between two systems
  scored on the same questions, with a two-sided p-value.
* :func:`mcnemar`: McNemar's test on paired correct/incorrect outcomes; exact binomial for
  few discordant pairs, chi-square with continuity correction otherwise.

Everything is deterministic for a given ``seed`` (``numpy.random.default_rng``). NaN
scores (e.g. a failed request) are dropped, pairwise for the paired tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, Literal, TypedDict

import numpy as np
import numpy.typing as npt

__all__ = [
    "McNemarResult",
    "PairedBootstrapResult",
    "bootstrap_ci",
    "mcnemar",
    "paired_bootstrap",
]

FloatArray = npt.NDArray[np.float64]
Statistic = Callable[[FloatArray], Any]

# numpy reductions that accept ``axis=``: for these the bootstrap evaluates every resample
# in one vectorised call instead of a Python loop over resamples.
_VECTORISABLE: tuple[Callable[..., Any], ...] = (
    np.mean,
    np.median,
    np.sum,
    np.std,
    np.var,
    np.min,
    np.max,
)
# Upper bound on resample-matrix elements held at once (8 bytes each: ~32 MB), so that
# bootstrapping a large suite does not allocate n_resamples * n integers in one go.
_MAX_CHUNK_ELEMENTS = 4_000_000
# Below this many discordant pairs McNemar uses the exact binomial test (the chi-square
# approximation is poor for small counts; 25 is the usual textbook threshold).
_EXACT_MCNEMAR_BELOW = 25


class PairedBootstrapResult(TypedDict):
    """Result of :func:`paired_bootstrap`."""

    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int


class McNemarResult(TypedDict):
    """Result of :func:`mcnemar`."""

    b01: int
    """Pairs where system A is wrong and system B is right."""
    b10: int
    """Pairs where system A is right and system B is wrong."""
    n: int
    """Discordant pairs, ``b01 + b10``."""
    statistic: float
    """``min(b01, b10)`` for the exact test; the corrected chi-square otherwise."""
    p_value: float
    method: Literal["exact", "chi2"]


def _check_params(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _as_clean_array(values: Sequence[float] | FloatArray) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr[~np.isnan(arr)]


def _resample_stats(
    arr: FloatArray, stat: Statistic, n_resamples: int, rng: np.random.Generator
) -> FloatArray:
    """Statistic of ``n_resamples`` resamples (with replacement) of ``arr``."""
    n = arr.size
    out = np.empty(n_resamples, dtype=np.float64)
    chunk = max(1, _MAX_CHUNK_ELEMENTS // n)
    vectorised = stat in _VECTORISABLE
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        samples = arr[rng.integers(0, n, size=(stop - start, n))]
        if vectorised:
            out[start:stop] = stat(samples, axis=1)  # type: ignore[call-arg]
        else:
            out[start:stop] = [float(stat(row)) for row in samples]
    return out


def _percentile_interval(boot: FloatArray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    low, high = np.percentile(boot, [100.0 * alpha / 2.0, 100.0 * (1.0 - alpha / 2.0)])
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[float] | FloatArray,
    stat: Statistic = np.mean,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Percentile-bootstrap confidence interval of ``stat`` over ``values``.

    Returns ``(point, low, high)``: ``point`` is ``stat`` of the values themselves, and
    ``low``/``high`` are the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles
    (numpy's default linear interpolation) of ``stat`` over ``n_resamples`` resamples drawn
    with replacement. NaN values are dropped first; with no value left the result is
    ``(nan, nan, nan)``.

    ``stat`` takes a 1-D float array and returns a number. numpy reductions such as
    ``np.mean`` or ``np.median`` are evaluated vectorised; any other callable is called
    once per resample.
    """
    _check_params(n_resamples, confidence)
    arr = _as_clean_array(values)
    if arr.size == 0:
        return (math.nan, math.nan, math.nan)
    point = float(stat(arr))
    boot = _resample_stats(arr, stat, n_resamples, np.random.default_rng(seed))
    low, high = _percentile_interval(boot, confidence)
    return (point, low, high)


def paired_bootstrap(
    a: Sequence[float] | FloatArray,
    b: Sequence[float] | FloatArray,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedBootstrapResult:
    """Paired bootstrap of the mean difference ``mean(a - b)`` over the same questions.

    ``a[i]`` and ``b[i]`` are two systems' scores on question ``i``; pairs where either is
    NaN are dropped. The questions are resampled with replacement ``n_resamples`` times
    and the mean of the differences recomputed each time. ``ci_low``/``ci_high`` are the
    percentile interval of that bootstrap distribution; ``p_value`` is two-sided:

        p = min(1, 2 * min(#{d* <= 0} + 1, #{d* >= 0} + 1) / (n_resamples + 1))

    i.e. twice the smaller tail of the bootstrap distribution beyond zero, with the usual
    +1 correction so that a finite number of resamples never reports p = 0 (the smallest
    possible value is ``2 / (n_resamples + 1)``). When every difference is zero, p = 1.

    With no pair left, every float is NaN and ``n`` is 0.

    Raises:
        ValueError: if ``a`` and ``b`` differ in length.
    """
    _check_params(n_resamples, confidence)
    arr_a = np.asarray(a, dtype=np.float64).ravel()
    arr_b = np.asarray(b, dtype=np.float64).ravel()
    if arr_a.shape != arr_b.shape:
        raise ValueError(f"a and b must have the same length, got {arr_a.size} and {arr_b.size}")
    keep = ~(np.isnan(arr_a) | np.isnan(arr_b))
    diffs = arr_a[keep] - arr_b[keep]
    n = int(diffs.size)
    if n == 0:
        nan = math.nan
        return {"mean_diff": nan, "ci_low": nan, "ci_high": nan, "p_value": nan, "n": 0}
    boot = _resample_stats(diffs, np.mean, n_resamples, np.random.default_rng(seed))
    low, high = _percentile_interval(boot, confidence)
    at_or_below = int(np.count_nonzero(boot <= 0.0))
    at_or_above = int(np.count_nonzero(boot >= 0.0))
    p_value = min(1.0, 2.0 * (min(at_or_below, at_or_above) + 1) / (n_resamples + 1))
    return {
        "mean_diff": float(np.mean(diffs)),
        "ci_low": low,
        "ci_high": high,
        "p_value": p_value,
        "n": n,
    }


def _binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes out of ``n`` under Binomial(n, 1/2).

    The distribution is symmetric, so the two-sided p-value is twice the smaller tail,
    capped at 1. Fractions keep the sum exact before the single rounding to float.
    """
    k = min(k, n - k)
    tail = Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2**n)
    return float(min(Fraction(1), 2 * tail))


def mcnemar(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> McNemarResult:
    """McNemar's test of two systems' paired correct/incorrect outcomes.

    Only discordant pairs matter: ``b01`` counts questions A got wrong and B right,
    ``b10`` questions A got right and B wrong, ``n = b01 + b10``.

    * ``n < 25``: exact two-sided binomial test of ``min(b01, b10)`` under
      Binomial(n, 1/2); ``statistic = min(b01, b10)``, ``method = "exact"``.
      With ``n = 0`` the p-value is 1.
    * otherwise: chi-square with Edwards' continuity correction,
      ``statistic = (|b01 - b10| - 1)^2 / n`` with 1 degree of freedom, whose survival
      function is ``erfc(sqrt(statistic / 2))``; ``method = "chi2"``.

    Raises:
        ValueError: if the sequences differ in length.
    """
    if len(a_correct) != len(b_correct):
        raise ValueError(
            f"a_correct and b_correct must have the same length, "
            f"got {len(a_correct)} and {len(b_correct)}"
        )
    b01 = sum(1 for x, y in zip(a_correct, b_correct, strict=True) if not x and y)
    b10 = sum(1 for x, y in zip(a_correct, b_correct, strict=True) if x and not y)
    n = b01 + b10
    if n < _EXACT_MCNEMAR_BELOW:
        return {
            "b01": b01,
            "b10": b10,
            "n": n,
            "statistic": float(min(b01, b10)),
            "p_value": _binomial_two_sided(b01, n) if n else 1.0,
            "method": "exact",
        }
    statistic = (abs(b01 - b10) - 1) ** 2 / n
    return {
        "b01": b01,
        "b10": b10,
        "n": n,
        "statistic": float(statistic),
        "p_value": math.erfc(math.sqrt(statistic / 2.0)),
        "method": "chi2",
    }
