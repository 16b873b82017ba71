"""Every statistic the reports use, once: bootstrap intervals, exact tests, per-case pairing.

Bootstrap (percentile method; deterministic for a given ``seed``, which may also be a
``numpy.random.Generator`` to draw from):

* :func:`bootstrap_distribution` / :func:`bootstrap_ci`: a statistic of one sample. With
  ``clusters`` (e.g. the case id of each row) the bootstrap resamples whole clusters, so
  that the repeats of one case count as one unit of evidence.
* :func:`percentile_ci`: the interval of one percentile (latency tables), clustered alike.

How the bootstrap stays fast on a million rows, with the same results: a clustered
resample is evaluated from how often it drew each cluster (a percentile by a binary
search over the sorted values, a mean from the clusters' sums), never materialised;
and a percentile of more than 2,000 unclustered values is not resampled value by value:
its bootstrap distribution is sampled exactly from the laws of two order statistics
(two Beta draws per resample).
* :func:`bootstrap_difference`: ``stat(a) - stat(b)`` for two independent samples.
* :func:`paired_bootstrap`: the mean paired difference over the same cases.

Exact tests (cheap at these sizes, honest at small counts):

* :func:`binomial_test`: two-sided exact binomial test (the "minlike" rule).
* :func:`sign_test` / :func:`mcnemar`: paired outcomes; only discordant pairs count, and
  the p-value is the exact binomial test of them (McNemar's exact test for 0/1 outcomes).
* :func:`fisher_exact`: two error counts.

Intervals: :func:`order_statistic_interval` (a percentile, distribution-free, exact
coverage), :func:`wilson_interval`, :func:`newcombe_interval` (difference of two
proportions), :func:`agresti_min_lower_bound` (one-sided, paired differences).

Pairing: :func:`per_case` averages a score over each case's repeats (and load levels) —
one value per case and provider — and :func:`compare_paired` tests two providers on those
per-case values: the paired bootstrap and the exact sign test must agree.

NaN values (e.g. a failed request's latency) are dropped, pairwise for the paired tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist
from typing import Any, Literal, TypedDict

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "McNemarResult",
    "PairedBootstrapResult",
    "PairedComparison",
    "Percentile",
    "agresti_min_lower_bound",
    "binomial_test",
    "bootstrap_ci",
    "bootstrap_difference",
    "bootstrap_distribution",
    "compare_paired",
    "fisher_exact",
    "mcnemar",
    "newcombe_interval",
    "order_statistic_interval",
    "paired_bootstrap",
    "per_case",
    "percentile_ci",
    "percentile_interval",
    "sign_test",
    "two_sided_p",
    "wilson_interval",
]

FloatArray = npt.NDArray[np.float64]
Statistic = Callable[..., Any]
Seed = int | np.random.Generator
Values = Sequence[float] | FloatArray

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
# Their NaN-ignoring twins, for clustered resamples padded with NaN (unequal clusters).
_NAN_TWINS: dict[Callable[..., Any], Callable[..., Any]] = {
    np.mean: np.nanmean,
    np.sum: np.nansum,
    np.std: np.nanstd,
    np.var: np.nanvar,
    np.min: np.nanmin,
    np.max: np.nanmax,
}
# Upper bound on resample-matrix elements held at once (8 bytes each: ~32 MB), so that
# bootstrapping a large suite does not allocate n_resamples * n values in one go.
_MAX_CHUNK_ELEMENTS = 4_000_000
# Above this many values (without clusters) a percentile's bootstrap does not resample
# values: its distribution is sampled from two order statistics' exact laws
# (_order_statistic_bootstrap), and its interval is the exact order-statistic one.
_RESAMPLE_VALUES_MAX = 2_000
# Largest (values x clusters) table of running member counts a clustered percentile
# bootstrap builds (8 bytes each: 32 MB); beyond it, it searches sorted positions.
_COUNT_TABLE_MAX = 4_000_000
# scipy's tolerance for "as likely as the observed table" in exact tests: absorbs the
# rounding of probabilities that are equal in exact arithmetic.
_RELATIVE_TOLERANCE = 1e-7


@dataclass(frozen=True)
class Percentile:
    """The ``q``-th percentile (numpy's default linear interpolation) as a statistic.

    ``Percentile(95)(x)`` is ``np.percentile(x, 95)``; the bootstrap evaluates it
    vectorised, also over clustered resamples of unequal size.
    """

    q: float

    def __call__(self, x: FloatArray, axis: int | None = None) -> Any:
        return np.percentile(x, self.q, axis=axis)


class PairedBootstrapResult(TypedDict):
    """Result of :func:`paired_bootstrap`."""

    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int


class McNemarResult(TypedDict):
    """Result of :func:`mcnemar` and :func:`sign_test`."""

    b01: int
    """Pairs where A is worse than B (for 0/1 outcomes: A wrong, B right)."""
    b10: int
    """Pairs where A is better than B (A right, B wrong)."""
    n: int
    """Discordant pairs, ``b01 + b10``."""
    statistic: float
    """``min(b01, b10)``."""
    p_value: float
    method: Literal["exact"]


class PairedComparison(TypedDict):
    """Result of :func:`compare_paired`: A against B on the same cases."""

    n: int
    mean_a: float
    mean_b: float
    mean_diff: float
    """``mean(a - b)``."""
    ci_low: float
    ci_high: float
    p_bootstrap: float
    b01: int
    b10: int
    p_exact: float
    test: str
    """``"McNemar"`` when every per-case value is 0 or 1, else ``"sign test"``."""
    significant: bool


# --------------------------------------------------------------------------- bootstrap


def _check_params(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _clean(
    values: Values, clusters: Sequence[Hashable] | npt.ArrayLike | None
) -> tuple[FloatArray, npt.NDArray[Any] | None]:
    arr = np.asarray(values, dtype=np.float64).ravel()
    keep = ~np.isnan(arr)
    if clusters is None:
        return arr[keep], None
    # Integer labels (e.g. case codes) stay integers: factorising them is fast.
    integral = isinstance(clusters, np.ndarray) and clusters.dtype.kind in "iu"
    labels = np.asarray(clusters) if integral else np.asarray(clusters, dtype=object)
    labels = labels.ravel()
    if labels.shape != arr.shape:
        raise ValueError(
            f"clusters must label every value, got {labels.size} labels for {arr.size} values"
        )
    return arr[keep], labels[keep]


def _padded_percentile(samples: FloatArray, q: float) -> FloatArray:
    """``np.percentile(row[~isnan(row)], q)`` for every row, vectorised (linear method)."""
    ordered = np.sort(samples, axis=1)  # NaN sort last
    counts = np.count_nonzero(~np.isnan(samples), axis=1)
    h = (counts - 1) * (q / 100.0)
    low = np.floor(h).astype(np.int64)
    high = np.minimum(low + 1, counts - 1)
    rows = np.arange(samples.shape[0])
    below, above = ordered[rows, low], ordered[rows, high]
    return np.asarray(below + (h - low) * (above - below), dtype=np.float64)


def _row_stats(samples: FloatArray, stat: Statistic, padded: bool) -> FloatArray:
    """``stat`` of every row of ``samples`` (rows padded with NaN when ``padded``)."""
    if not padded:
        if stat in _VECTORISABLE or isinstance(stat, Percentile):
            return np.asarray(stat(samples, axis=1), dtype=np.float64)
        return np.array([float(stat(row)) for row in samples], dtype=np.float64)
    if stat is np.median:
        stat = Percentile(50.0)
    if isinstance(stat, Percentile):
        return _padded_percentile(samples, stat.q)
    twin = _NAN_TWINS.get(stat)
    if twin is not None:
        return np.asarray(twin(samples, axis=1), dtype=np.float64)
    return np.array([float(stat(row[~np.isnan(row)])) for row in samples], dtype=np.float64)


def _distribution(
    arr: FloatArray,
    labels: npt.NDArray[Any] | None,
    stat: Statistic,
    n_resamples: int,
    rng: np.random.Generator,
) -> FloatArray:
    return _resampled(arr, _clusters(arr, labels), stat, n_resamples, rng)


def _resampled(
    arr: FloatArray,
    clusters: _Clusters | None,
    stat: Statistic,
    n_resamples: int,
    rng: np.random.Generator,
) -> FloatArray:
    if stat is np.median:
        stat = Percentile(50.0)
    if clusters is not None and (isinstance(stat, Percentile) or stat in (np.mean, np.sum)):
        # Same draws as resampling the (cluster x member) matrix, without building it:
        # a resample is how often it drew each cluster.
        counts = _cluster_counts(clusters, n_resamples, rng)
        if isinstance(stat, Percentile):
            return _weighted_percentiles(arr, clusters, counts, stat.q)
        sums = counts @ np.bincount(clusters.codes, weights=arr, minlength=clusters.k)
        if stat is np.sum:
            return np.asarray(sums, dtype=np.float64)
        return np.asarray(sums / (counts @ clusters.sizes), dtype=np.float64)
    if clusters is None and isinstance(stat, Percentile) and arr.size > _RESAMPLE_VALUES_MAX:
        return _order_statistic_bootstrap(arr, stat.q, n_resamples, rng)
    matrix = None if clusters is None else clusters.matrix(arr)
    units = arr[:, None] if matrix is None else matrix
    k, width = units.shape
    padded = matrix is not None and bool(np.isnan(matrix).any())
    out = np.empty(n_resamples, dtype=np.float64)
    chunk = max(1, _MAX_CHUNK_ELEMENTS // (k * width))
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        picked = units[rng.integers(0, k, size=(stop - start, k))]
        out[start:stop] = _row_stats(picked.reshape(stop - start, k * width), stat, padded)
    return out


@dataclass(frozen=True)
class _Clusters:
    """Each value's cluster number (in order of first appearance) and the cluster sizes."""

    codes: npt.NDArray[np.int64]
    sizes: npt.NDArray[np.int64]

    @property
    def k(self) -> int:
        return int(self.sizes.size)

    @property
    def width(self) -> int:
        return int(self.sizes.max())

    def matrix(self, arr: FloatArray) -> FloatArray:
        """Values as a (cluster x member) matrix padded with NaN."""
        order = np.argsort(self.codes, kind="stable")
        starts = np.concatenate(([0], np.cumsum(self.sizes)[:-1]))
        sorted_codes = self.codes[order]
        position = np.arange(arr.size) - starts[sorted_codes]
        matrix = np.full((self.k, self.width), np.nan)
        matrix[sorted_codes, position] = arr[order]
        return matrix


def _clusters(arr: FloatArray, labels: npt.NDArray[Any] | None) -> _Clusters | None:
    """The clusters to resample, or None when nothing clusters.

    With a single cluster there is nothing to resample between, and with clusters of
    one value each the clustered bootstrap is the plain one: both give None (resample
    values).
    """
    if labels is None or arr.size == 0:
        return None
    codes, uniques = pd.factorize(labels, use_na_sentinel=False)
    sizes = np.bincount(codes, minlength=len(uniques))
    if len(uniques) < 2 or int(sizes.max()) == 1:
        return None
    return _Clusters(codes.astype(np.int64), sizes.astype(np.int64))


def _cluster_counts(
    clusters: _Clusters, n_resamples: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """(resample x cluster) draw counts; the draws are those of the matrix bootstrap
    (``k`` cluster indices per resample, in the same chunks), so results are identical."""
    k = clusters.k
    out = np.empty((n_resamples, k), dtype=np.int64)
    chunk = max(1, _MAX_CHUNK_ELEMENTS // (k * clusters.width))
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        picks = rng.integers(0, k, size=(stop - start, k))
        flat = (np.arange(stop - start)[:, None] * k + picks).ravel()
        out[start:stop] = np.bincount(flat, minlength=(stop - start) * k).reshape(-1, k)
    return out


def _lerp(below: FloatArray, above: FloatArray, gamma: FloatArray) -> FloatArray:
    """numpy's linear interpolation, operation for operation (so results are identical)."""
    diff = above - below
    out = below + diff * gamma
    return np.where(gamma >= 0.5, above - diff * (1 - gamma), out)


def _virtual_index(n: npt.NDArray[np.int64] | int, q: float) -> Any:
    """numpy's (linear method) fractional position of the ``q``-th percentile in ``n``
    sorted values, computed as numpy computes it."""
    quantile = np.true_divide(q, 100)
    return n * quantile + (1 + quantile * (1 - 1 - 1)) - 1


def _weighted_percentiles(
    arr: FloatArray, clusters: _Clusters, counts: npt.NDArray[np.int64], q: float
) -> FloatArray:
    """``np.percentile`` of every pooled resample, from its cluster counts alone
    (:func:`_weighted_percentiles_of`, for one ``q``)."""
    return _weighted_percentiles_of(arr, clusters, counts, (q,))[0]


def _weighted_percentiles_of(
    arr: FloatArray, clusters: _Clusters, counts: npt.NDArray[np.int64], qs: Sequence[float]
) -> list[FloatArray]:
    """``np.percentile`` of every pooled resample, from its cluster counts alone, for each
    of ``qs`` (the sort and the count table are shared; each rank's search is its own,
    so every ``q`` gives what it gives alone).

    A resample's j-th smallest value is the first value (in sorted order) at which the
    count of drawn values at or below it passes j: a binary search over positions in
    the sorted values, where the drawn values at or below position t are
    ``sum_c counts[c] * members of cluster c at or below t``. That costs
    O(log n) steps of O(resamples x clusters), instead of sorting every resample.
    """
    n = arr.size
    order = np.argsort(arr)  # ties may go either way: they hold the same value
    values = arr[order]
    codes = clusters.codes[order]
    total = counts @ clusters.sizes  # values in each resample
    ranks, gammas = [], []
    for q in qs:
        virtual = _virtual_index(total, q)
        below = np.floor(virtual).astype(np.int64)
        gammas.append(virtual - below)
        above = np.minimum(below + 1, total - 1)
        below = np.clip(below, 0, total - 1)
        ranks += [below, above]
    targets = np.concatenate(ranks)  # 0-based ranks in each resample
    weights = np.concatenate([counts] * len(ranks))
    if n * clusters.k <= _COUNT_TABLE_MAX:
        # members of each cluster at or below every position: (n x k), small enough
        table = np.zeros((clusters.k, n), dtype=np.int32)
        table[codes, np.arange(n)] = 1
        np.cumsum(table, axis=1, out=table)

        def drawn_upto(t: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
            return np.asarray(np.einsum("ij,ji->i", weights, table[:, t]), dtype=np.int64)
    else:
        keys = np.sort(codes * n + np.arange(n))  # by cluster, then position
        starts = np.concatenate(([0], np.cumsum(clusters.sizes)[:-1]))
        offsets = np.arange(clusters.k, dtype=np.int64) * n

        def drawn_upto(t: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
            found = np.searchsorted(keys, (offsets[None, :] + t[:, None]).ravel(), "right")
            members = found.reshape(t.size, clusters.k) - starts[None, :]
            return np.asarray(np.einsum("ij,ij->i", weights, members), dtype=np.int64)

    low = np.zeros(targets.size, dtype=np.int64)
    high = np.full(targets.size, n - 1, dtype=np.int64)
    while True:
        open_ = low < high
        if not open_.any():
            break
        mid = (low + high) // 2
        reached = drawn_upto(mid) > targets
        high = np.where(open_ & reached, mid, high)
        low = np.where(open_ & ~reached, mid + 1, low)
    picked = values[low].reshape(len(ranks), -1)
    return [
        np.asarray(_lerp(picked[2 * i], picked[2 * i + 1], gamma), dtype=np.float64)
        for i, gamma in enumerate(gammas)
    ]


def _order_statistic_bootstrap(
    arr: FloatArray, q: float, n_resamples: int, rng: np.random.Generator
) -> FloatArray:
    """The plain bootstrap distribution of ``np.percentile(resample, q)``, sampled exactly
    without resampling ``n`` values.

    A resample of ``n`` values drawn with replacement is ``n`` uniform draws ``u`` mapped
    through the sorted values (``u -> x[ceil(n u) - 1]``), a non-decreasing map: so its
    j-th smallest value is the image of the j-th smallest of ``n`` uniforms, which is
    Beta(j, n + 1 - j), and the next one is ``U_(j) + (1 - U_(j)) * Beta(1, n - j)``.
    Two Beta draws per resample give the two order statistics the percentile
    interpolates between: the same distribution as resampling, in O(n log n + B).
    """
    n = arr.size
    values = np.sort(arr)
    virtual = _virtual_index(n, q)
    below = int(np.floor(virtual))
    gamma = float(virtual - below)
    j = below + 1  # 1-based rank of the lower order statistic
    u_low = rng.beta(j, n + 1 - j, size=n_resamples)
    u_high = u_low + (1 - u_low) * rng.beta(1, n - j, size=n_resamples) if j < n else u_low

    def image(u: FloatArray) -> FloatArray:
        return values[np.clip(np.ceil(u * n).astype(np.int64) - 1, 0, n - 1)]

    gammas = np.full(n_resamples, gamma)
    return np.asarray(_lerp(image(u_low), image(u_high), gammas), dtype=np.float64)


def order_statistic_interval(
    values: Values, q: float, confidence: float = 0.95
) -> tuple[float, float]:
    """Distribution-free interval of the ``q``-th percentile from two order statistics.

    With ``B ~ Binomial(n, q/100)`` the number of values below the true percentile,
    the j-th smallest value lies below it with probability ``P(B >= j)``. The interval
    is ``[x_(l), x_(u)]`` with the largest ``l`` such that ``P(B <= l - 1) <= a/2`` and
    the smallest ``u`` such that ``P(B <= u - 1) >= 1 - a/2`` (``a = 1 - confidence``):
    coverage at least ``confidence`` for any continuous distribution, exact (no
    resampling, no normal approximation), O(n) after a partial sort. A bound that no
    order statistic reaches at this ``n`` (too few values) is NaN. NaN values are dropped.
    """
    _check_params(1, confidence)
    if not 0.0 < q < 100.0:
        raise ValueError(f"q must be in (0, 100), got {q}")
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[~np.isnan(arr)]
    n = int(arr.size)
    if n == 0:
        return (math.nan, math.nan)
    alpha = 1.0 - confidence
    first, cdf = _binomial_cdf(n, q / 100.0)
    # cdf[i] = P(B <= first + i); below ``first`` the mass is < 1e-30.
    lower = first + int(np.searchsorted(cdf, alpha / 2, side="right"))  # l - 1 = #{cdf <= a/2}
    upper = first + int(np.searchsorted(cdf, 1 - alpha / 2, side="left")) + 1
    ranks = [r - 1 for r in (lower, upper) if 1 <= r <= n]
    part = np.partition(arr, ranks) if ranks else arr
    low = float(part[lower - 1]) if 1 <= lower <= n else math.nan
    high = float(part[upper - 1]) if 1 <= upper <= n else math.nan
    return (low, high)


def _binomial_cdf(n: int, p: float) -> tuple[int, FloatArray]:
    """``P(B <= k)`` for ``B ~ Binomial(n, p)`` on the window of ``k`` that holds all but
    1e-30 of the mass (12 standard deviations each side): (first k, cdf values)."""
    sd = math.sqrt(n * p * (1 - p))
    first = max(0, math.floor(n * p - 12 * sd) - 2)
    last = min(n, math.ceil(n * p + 12 * sd) + 2)
    k = np.arange(first, last + 1, dtype=np.float64)
    start = _log_comb(n, first) + first * math.log(p) + (n - first) * math.log1p(-p)
    # log pmf(k + 1) - log pmf(k) = log((n - k) / (k + 1)) + log(p / (1 - p))
    steps = np.log((n - k[:-1]) / (k[:-1] + 1)) + math.log(p / (1 - p))
    log_pmf = start + np.concatenate(([0.0], np.cumsum(steps)))
    return first, np.minimum(np.cumsum(np.exp(log_pmf)), 1.0)


def bootstrap_distribution(
    values: Values,
    stat: Statistic = np.mean,
    n_resamples: int = 2000,
    seed: Seed = 0,
    clusters: Sequence[Hashable] | npt.ArrayLike | None = None,
) -> FloatArray:
    """``stat`` of ``n_resamples`` bootstrap resamples of ``values`` (NaN dropped first).

    Without ``clusters`` each resample draws ``n`` values with replacement. With
    ``clusters`` (one label per value, e.g. the case id) and some cluster holding more
    than one value, each resample draws ``k`` whole clusters with replacement out of the
    ``k`` present and pools their values: repeats of one case move together. With one
    cluster only, or one value per cluster, it is the plain bootstrap. With no value left
    the result is empty.

    ``stat`` takes a 1-D float array and returns a number; numpy reductions such as
    ``np.mean`` or ``np.median`` and :class:`Percentile` are evaluated vectorised.

    Raises:
        ValueError: for ``n_resamples < 1`` or ``clusters`` of another length.
    """
    _check_params(n_resamples, 0.5)
    arr, labels = _clean(values, clusters)
    if arr.size == 0:
        return np.empty(0, dtype=np.float64)
    return _distribution(arr, labels, stat, n_resamples, np.random.default_rng(seed))


def percentile_interval(boot: FloatArray, confidence: float = 0.95) -> tuple[float, float]:
    """The equal-tailed ``confidence`` interval of a bootstrap distribution."""
    alpha = 1.0 - confidence
    low, high = np.percentile(boot, [100.0 * alpha / 2.0, 100.0 * (1.0 - alpha / 2.0)])
    return float(low), float(high)


def two_sided_p(boot: FloatArray) -> float:
    """Two-sided bootstrap p-value of "the statistic is 0" from its distribution:

        p = min(1, 2 * min(#{d* <= 0} + 1, #{d* >= 0} + 1) / (B + 1))

    twice the smaller tail beyond zero, +1 corrected so that a finite number of resamples
    never reports p = 0 (the smallest possible value is ``2 / (B + 1)``).
    """
    below = int(np.count_nonzero(boot <= 0.0))
    above = int(np.count_nonzero(boot >= 0.0))
    return min(1.0, 2.0 * (min(below, above) + 1) / (boot.size + 1))


def bootstrap_ci(
    values: Values,
    stat: Statistic = np.mean,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: Seed = 0,
    clusters: Sequence[Hashable] | npt.ArrayLike | None = None,
) -> tuple[float, float, float]:
    """Percentile-bootstrap confidence interval of ``stat`` over ``values``.

    Returns ``(point, low, high)``: ``point`` is ``stat`` of the values themselves, and
    ``low``/``high`` are the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles
    (numpy's default linear interpolation) of ``stat`` over the resamples of
    :func:`bootstrap_distribution` (clustered when ``clusters`` is given). NaN values are
    dropped first; with no value left the result is ``(nan, nan, nan)``.
    """
    _check_params(n_resamples, confidence)
    arr, labels = _clean(values, clusters)
    if arr.size == 0:
        return (math.nan, math.nan, math.nan)
    point = float(stat(arr))
    boot = _distribution(arr, labels, stat, n_resamples, np.random.default_rng(seed))
    low, high = percentile_interval(boot, confidence)
    return (point, low, high)


def percentile_ci(
    values: Values,
    q: float,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: Seed = 0,
    clusters: Sequence[Hashable] | npt.ArrayLike | None = None,
) -> tuple[float, float]:
    """95 % (``confidence``) interval of the ``q``-th percentile; ``(nan, nan)`` below
    two values.

    With ``clusters`` (the case of each value) a group with repeats resamples cases (the
    clustered bootstrap: repeats of a case are one unit of evidence). Without repeats,
    up to 2,000 values, the percentile bootstrap of the values; above that, the exact
    order-statistic interval (:func:`order_statistic_interval`), which is what that
    bootstrap approximates (the bootstrap distribution of a sample percentile puts its
    mass on order statistics with binomial weights), without its Monte Carlo error and
    at O(n) instead of ``n_resamples`` sorts of n values.
    """
    _check_params(n_resamples, confidence)
    arr, labels = _clean(values, clusters)
    if arr.size < 2:
        return (math.nan, math.nan)
    groups = _clusters(arr, labels)
    if groups is None and arr.size > _RESAMPLE_VALUES_MAX and 0 < q < 100:
        return order_statistic_interval(arr, q, confidence)
    boot = _resampled(arr, groups, Percentile(q), n_resamples, np.random.default_rng(seed))
    return percentile_interval(boot, confidence)


def bootstrap_difference(
    a: Values,
    b: Values,
    stat: Statistic = np.mean,
    *,
    clusters_a: Sequence[Hashable] | npt.ArrayLike | None = None,
    clusters_b: Sequence[Hashable] | npt.ArrayLike | None = None,
    n_resamples: int = 2000,
    seed: Seed = 0,
) -> FloatArray:
    """Bootstrap distribution of ``stat(a) - stat(b)`` for two independent samples.

    Each sample is resampled on its own (clustered by its labels when given), from one
    generator, ``a`` first. Empty when either sample has no value.
    """
    _check_params(n_resamples, 0.5)
    arr_a, labels_a = _clean(a, clusters_a)
    arr_b, labels_b = _clean(b, clusters_b)
    if arr_a.size == 0 or arr_b.size == 0:
        return np.empty(0, dtype=np.float64)
    rng = np.random.default_rng(seed)
    boot_a = _distribution(arr_a, labels_a, stat, n_resamples, rng)
    return boot_a - _distribution(arr_b, labels_b, stat, n_resamples, rng)


def bootstrap_differences(
    a: Values,
    b: Values,
    qs: Sequence[float],
    *,
    clusters_a: Sequence[Hashable] | npt.ArrayLike | None = None,
    clusters_b: Sequence[Hashable] | npt.ArrayLike | None = None,
    n_resamples: int = 2000,
    seed: Seed = 0,
) -> list[FloatArray]:
    """``[bootstrap_difference(a, b, Percentile(q), ...) for q in qs]``, the same arrays,
    with the work the percentiles share done once: when both samples are resampled by
    cluster, every ``q`` draws the same cluster counts (the draws do not depend on
    ``q``), so the clusters, the counts and the sorted values serve them all."""
    _check_params(n_resamples, 0.5)
    arr_a, labels_a = _clean(a, clusters_a)
    arr_b, labels_b = _clean(b, clusters_b)
    if arr_a.size == 0 or arr_b.size == 0:
        return [np.empty(0, dtype=np.float64) for _ in qs]
    groups_a, groups_b = _clusters(arr_a, labels_a), _clusters(arr_b, labels_b)
    if groups_a is None or groups_b is None:
        # Unclustered percentiles draw by q (order statistics): one q at a time.
        return [
            bootstrap_difference(
                a, b, Percentile(q), clusters_a=clusters_a, clusters_b=clusters_b,
                n_resamples=n_resamples, seed=seed,
            )
            for q in qs
        ]  # fmt: skip
    rng = np.random.default_rng(seed)
    # _resampled's clustered percentile path, a first, then b from the same generator
    boots_a = _weighted_percentiles_of(
        arr_a, groups_a, _cluster_counts(groups_a, n_resamples, rng), qs
    )
    boots_b = _weighted_percentiles_of(
        arr_b, groups_b, _cluster_counts(groups_b, n_resamples, rng), qs
    )
    return [x - y for x, y in zip(boots_a, boots_b, strict=True)]


def paired_bootstrap(
    a: Values,
    b: Values,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: Seed = 0,
) -> PairedBootstrapResult:
    """Paired bootstrap of the mean difference ``mean(a - b)`` over the same cases.

    ``a[i]`` and ``b[i]`` are two systems' scores on case ``i`` (one value per case: see
    :func:`per_case`); pairs where either is NaN are dropped. The cases are resampled
    with replacement ``n_resamples`` times and the mean of the differences recomputed
    each time. ``ci_low``/``ci_high`` are the percentile interval of that distribution;
    ``p_value`` is :func:`two_sided_p` of it. When every difference is zero, p = 1.

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
    boot = _distribution(diffs, None, np.mean, n_resamples, np.random.default_rng(seed))
    low, high = percentile_interval(boot, confidence)
    return {
        "mean_diff": float(np.mean(diffs)),
        "ci_low": low,
        "ci_high": high,
        "p_value": two_sided_p(boot),
        "n": n,
    }


# --------------------------------------------------------------------------- exact tests


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def binomial_test(k: int, n: int, p: float = 0.5) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` trials under Binomial(n, p).

    The two-sided p-value sums the probabilities of every outcome no more likely than the
    observed one (scipy's ``binomtest`` rule). For ``p = 1/2`` the distribution is
    symmetric, so that is twice the smaller tail, capped at 1, computed in exact integer
    arithmetic before a single rounding: ``binomial_test(3, 3) == 0.25`` exactly.
    ``n = 0`` gives 1.

    Raises:
        ValueError: for ``k`` outside ``0..n`` or ``p`` outside [0, 1].
    """
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if n == 0:
        return 1.0
    if p == 0.5:
        smaller = min(k, n - k)
        tail = Fraction(sum(math.comb(n, i) for i in range(smaller + 1)), 2**n)
        return float(min(Fraction(1), 2 * tail))
    if p in (0.0, 1.0):
        return 1.0 if k == n * p else 0.0
    logs = np.array(
        [_log_comb(n, i) + i * math.log(p) + (n - i) * math.log1p(-p) for i in range(n + 1)]
    )
    # Outcomes as likely as the observed one or less, within scipy's relative tolerance.
    threshold = logs[k] + math.log1p(_RELATIVE_TOLERANCE)
    return float(min(1.0, np.exp(logs[logs <= threshold]).sum()))


def sign_test(a: Values, b: Values) -> McNemarResult:
    """Exact sign test of paired values: do A and B differ on the same cases?

    ``b01`` counts pairs with ``a < b``, ``b10`` pairs with ``a > b``; ties and NaN pairs
    are dropped. The p-value is :func:`binomial_test` of ``b01`` out of ``n = b01 + b10``
    with p = 1/2. For 0/1 outcomes this is McNemar's exact test.

    Raises:
        ValueError: if ``a`` and ``b`` differ in length.
    """
    arr_a = np.asarray(a, dtype=np.float64).ravel()
    arr_b = np.asarray(b, dtype=np.float64).ravel()
    if arr_a.shape != arr_b.shape:
        raise ValueError(f"a and b must have the same length, got {arr_a.size} and {arr_b.size}")
    keep = ~(np.isnan(arr_a) | np.isnan(arr_b))
    arr_a, arr_b = arr_a[keep], arr_b[keep]
    b01 = int(np.count_nonzero(arr_a < arr_b))
    b10 = int(np.count_nonzero(arr_a > arr_b))
    n = b01 + b10
    return {
        "b01": b01,
        "b10": b10,
        "n": n,
        "statistic": float(min(b01, b10)),
        "p_value": binomial_test(b01, n),
        "method": "exact",
    }


def mcnemar(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> McNemarResult:
    """McNemar's exact test of two systems' paired correct/incorrect outcomes.

    Only discordant pairs matter: ``b01`` counts cases A got wrong and B right, ``b10``
    cases A got right and B wrong, ``n = b01 + b10``. The p-value is the exact two-sided
    binomial test of ``b01`` out of ``n`` at 1/2 (:func:`binomial_test`), at every ``n``:
    it is cheap at these sizes, and the chi-square approximation is poor exactly where
    decisions are close (``b01 == b10`` gives p = 1, not 0.85). ``n = 0`` gives p = 1.

    One outcome per case: average repeats first (:func:`per_case`), or the test counts
    one case five times.

    Raises:
        ValueError: if the sequences differ in length.
    """
    if len(a_correct) != len(b_correct):
        raise ValueError(
            f"a_correct and b_correct must have the same length, "
            f"got {len(a_correct)} and {len(b_correct)}"
        )
    as_float = np.asarray([bool(x) for x in a_correct], dtype=np.float64)
    bs_float = np.asarray([bool(x) for x in b_correct], dtype=np.float64)
    return sign_test(as_float, bs_float)


def fisher_exact(events_a: int, n_a: int, events_b: int, n_b: int) -> float:
    """Two-sided p-value of Fisher's exact test: ``events_a`` of ``n_a`` vs ``events_b``
    of ``n_b`` (e.g. errors among requests).

    Sums the hypergeometric probabilities of every table with the same margins that is
    no more likely than the observed one (scipy's rule, same relative tolerance). Exact,
    so it stays honest for the few errors of a healthy provider, where a normal
    approximation does not hold.

    Raises:
        ValueError: for counts outside ``0..n``.
    """
    if not (0 <= events_a <= n_a and 0 <= events_b <= n_b):
        raise ValueError(f"need 0 <= events <= n, got {events_a}/{n_a} and {events_b}/{n_b}")
    total, bad = n_a + n_b, events_a + events_b
    if bad in (0, total):
        return 1.0
    low, high = max(0, n_a - (total - bad)), min(bad, n_a)
    norm = _log_comb(total, n_a)
    logs = np.array(
        [_log_comb(bad, x) + _log_comb(total - bad, n_a - x) - norm for x in range(low, high + 1)]
    )
    threshold = logs[events_a - low] + math.log1p(_RELATIVE_TOLERANCE)
    return float(min(1.0, np.exp(logs[logs <= threshold]).sum()))


# --------------------------------------------------------------------------- intervals


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the proportion ``k / n`` (sensible at 0 and 1)."""
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def newcombe_interval(
    k_a: int, n_a: int, k_b: int, n_b: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Newcombe's hybrid score interval of ``k_a / n_a - k_b / n_b`` (from Wilson's)."""
    pa, pb = k_a / n_a, k_b / n_b
    la, ua = wilson_interval(k_a, n_a, confidence)
    lb, ub = wilson_interval(k_b, n_b, confidence)
    d = pa - pb
    low = d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    high = d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    return low, high


def agresti_min_lower_bound(diffs: Values, confidence: float = 0.95) -> float:
    """One-sided lower confidence bound of the mean paired difference (one per case).

    Adjusted Wald interval with pseudo-pairs (½ at +1, ½ at −1, 1 at 0): for 0/1 scores
    this is exactly Agresti & Min (2005) for matched proportions, whose coverage is good
    at small n. Unlike a bootstrap, it does not claim certainty when every pair happens
    to agree: 20 identical answers cannot show a 2-point margin.
    """
    arr = np.asarray(diffs, dtype=np.float64).ravel()
    total = arr.size + 2
    mean = float(arr.sum()) / total
    second = (float(np.square(arr).sum()) + 1.0) / total
    variance = max(second - mean * mean, 0.0) / total
    return mean - NormalDist().inv_cdf(confidence) * math.sqrt(variance)


# --------------------------------------------------------------------------- pairing


def per_case(
    rows: pd.DataFrame, value: str, by: str, case: Sequence[str] = ("case_id",)
) -> pd.DataFrame:
    """One value per case and ``by`` (e.g. provider): the mean of ``value`` over the case's
    rows — its repeats, and its load levels when ``case`` does not name ``load_level``.

    Repeats of a case are not independent evidence (a deterministic model answers the
    same way five times), so every paired test and every quality interval works on these
    means. Returns one row per case (index ``case``), one column per value of ``by``,
    NaN where that one has no score for the case.
    """
    keys = [*case, by]
    if value in rows.columns:
        # Only the columns it reads: filtering every column of a group copies them all.
        rows = rows[list(dict.fromkeys([*keys, value]))]
    scored = rows[rows[value].notna()] if value in rows.columns else rows.iloc[:0]
    means = scored.groupby(keys, sort=True, dropna=False)[value].mean()
    wide = means.unstack(by) if len(means) else pd.DataFrame()
    return wide.astype(float)


def compare_paired(
    a: Values,
    b: Values,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: Seed = 0,
) -> PairedComparison:
    """A against B on the same cases (one value per case, NaN pairs dropped).

    Paired bootstrap of ``mean(a - b)`` (interval at ``confidence``) and the exact sign
    test (McNemar's exact test for 0/1 values). ``significant`` needs both: the interval
    excludes 0 *and* the exact p-value is below ``1 - confidence`` — with few discordant
    cases the bootstrap interval is too narrow (4 of 10 cases all one way: the bootstrap
    interval excludes 0, the exact p is 0.125), and the exact test is the honest one.
    """
    arr_a = np.asarray(a, dtype=np.float64).ravel()
    arr_b = np.asarray(b, dtype=np.float64).ravel()
    boot = paired_bootstrap(arr_a, arr_b, n_resamples=n_resamples, confidence=confidence, seed=seed)
    test = sign_test(arr_a, arr_b)
    keep = ~(np.isnan(arr_a) | np.isnan(arr_b))
    pa, pb = arr_a[keep], arr_b[keep]
    binary = bool(np.isin(pa, (0.0, 1.0)).all() and np.isin(pb, (0.0, 1.0)).all())
    excludes_zero = boot["ci_low"] > 0 or boot["ci_high"] < 0
    return {
        "n": boot["n"],
        "mean_a": float(pa.mean()) if pa.size else math.nan,
        "mean_b": float(pb.mean()) if pb.size else math.nan,
        "mean_diff": boot["mean_diff"],
        "ci_low": boot["ci_low"],
        "ci_high": boot["ci_high"],
        "p_bootstrap": boot["p_value"],
        "b01": test["b01"],
        "b10": test["b10"],
        "p_exact": test["p_value"],
        "test": "McNemar" if binary else "sign test",
        "significant": bool(excludes_zero and test["p_value"] < 1.0 - confidence),
    }
