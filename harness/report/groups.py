"""Rows split into groups the way ``DataFrame.groupby(keys, sort=False)`` iterates them,
at the cost a million rows allow.

Iterating a pandas groupby sorts the whole frame first (a copy of every column, strings
through Arrow's ``take`` over every chunk) and then slices it. :func:`split` instead asks
the groupby only for each group's row positions (no column is copied), and builds each
group's frame from those positions, column by column:

* a key column holds the group's key in every row: it is filled, not gathered;
* a float or text column with no value in the group (a run of latency rows has a few
  dozen such score columns) becomes a missing column of the group's length;
* any other column is gathered with ``take`` of the group's positions.

Each group's frame has the same values, dtypes, index labels and row order as the frame
the groupby would yield (the positions are ascending), so every statistic computed from
it is the same, to the last bit. ``skip`` leaves out columns the caller never reads.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

__all__ = ["group_positions", "split"]

Positions = npt.NDArray[np.intp]


def group_positions(
    rows: pd.DataFrame, keys: Sequence[str], where: npt.NDArray[np.bool_] | None = None
) -> list[tuple[Any, Positions]]:
    """Each group's key and ascending row positions, in the order
    ``rows[where].groupby(keys, sort=False)`` yields them (first appearance); rows with
    a missing key belong to no group, as in the groupby."""
    if not len(rows):
        return []
    indices = rows.groupby(list(keys), sort=False).indices
    groups = []
    for key, found in indices.items():
        positions = np.asarray(found, dtype=np.intp)
        if where is not None:
            positions = positions[where[positions]]
        if positions.size:
            groups.append((key, positions))
    groups.sort(key=lambda item: int(item[1][0]))  # first appearance, as sort=False
    return groups


class _Column:
    """One column of the rows, ready to be cut into groups."""

    def __init__(
        self,
        column: pd.Series,
        group_of: npt.NDArray[np.intp],
        groups: int,
        sizes: npt.NDArray[np.intp] | None = None,
    ) -> None:
        self.dtype = column.dtype
        numeric = isinstance(column.dtype, np.dtype)
        self.values: Any = column.to_numpy(copy=False) if numeric else _one_chunk(column.array)
        # How many rows of each group have a value (None: not counted, always gathered).
        # Float columns are where whole groups are missing (the scores of other kinds);
        # a missing float is NaN whatever its bits, so such a group is filled, not
        # gathered. A text column's missing cells are all its dtype's one missing value:
        # a group without text repeats one of them. Other columns are always gathered
        # (an object column's missing cells may differ: None or NaN).
        self.present: npt.NDArray[np.intp] | None = None
        self.blank = -1
        self.floats = numeric and column.dtype.kind == "f"
        missing = None
        if self.floats:
            missing = np.isnan(self.values)
        elif isinstance(column.dtype, pd.StringDtype):
            missing = column.isna().to_numpy(dtype=bool)
            self.blank = int(np.argmax(missing)) if missing.any() else -1
        if missing is not None:
            self.present = _present(missing, group_of, groups, sizes)

    def take(self, positions: Positions, group: int, keyed: bool, nan: Any) -> Any:
        if keyed:  # a key column: the group's key in every row
            return _repeat(self.values, int(positions[0]), positions.size)
        if self.present is not None and self.present[group] == 0:
            if self.floats:
                return nan(self.dtype)
            if self.blank >= 0:
                return _repeat(self.values, self.blank, positions.size)
        return self.values.take(positions)


def _present(
    missing: npt.NDArray[np.bool_],
    group_of: npt.NDArray[np.intp],
    groups: int,
    sizes: npt.NDArray[np.intp] | None,
) -> npt.NDArray[np.intp]:
    """How many rows of each group have a value (``missing``: a cell without one).

    ``group_of`` numbers rows of no group ``groups`` (a bin of its own). Only the
    rarer side is counted: most columns are missing everywhere (another kind's scores)
    or nowhere (the timings), and then no row is binned at all."""
    if sizes is None:
        sizes = np.bincount(group_of, minlength=groups + 1)
    gaps = int(np.count_nonzero(missing))
    if gaps == 0:
        return np.asarray(sizes[:groups], dtype=np.intp)
    if gaps == missing.size:
        return np.zeros(groups, dtype=np.intp)
    if 2 * gaps <= missing.size:
        lacking = np.bincount(group_of[missing], minlength=groups + 1)
        return np.asarray((sizes - lacking)[:groups], dtype=np.intp)
    return np.asarray(np.bincount(group_of[~missing], minlength=groups + 1)[:groups], np.intp)


def _repeat(values: Any, position: int, n: int) -> Any:
    """The cell at ``position``, ``n`` times, in the column's own array type."""
    return values[position : position + 1].take(np.zeros(n, dtype=np.intp))


def _one_chunk(array: Any) -> Any:
    """An Arrow-backed text array in one chunk: Arrow's ``take`` over many chunks costs
    more than the copy into one (the same values, the same dtype)."""
    if not isinstance(array, pd.arrays.ArrowStringArray):
        return array
    chunked = pa.array(array)  # the array's own chunks (__arrow_array__), no copy
    if not isinstance(chunked, pa.ChunkedArray):
        return array
    if chunked.num_chunks <= 1:
        return array
    one = pa.chunked_array([chunked.combine_chunks()], type=chunked.type)
    # pandas 3 takes the dtype (its missing value: NaN for "str"); the stubs do not say so.
    return pd.arrays.ArrowStringArray(one, dtype=array.dtype)  # type: ignore[call-arg]


def split(
    rows: pd.DataFrame,
    keys: Sequence[str],
    *,
    where: npt.NDArray[np.bool_] | None = None,
    skip: Collection[str] = (),
) -> Iterator[tuple[Any, pd.DataFrame]]:
    """``(key, group)`` for every group of ``rows[where].groupby(keys, sort=False)``
    (``where``: a boolean per row; default every row), each ``group`` equal to the
    groupby's (see the module docstring), without the ``skip`` columns."""
    groups = group_positions(rows, keys, where)
    if not groups:
        return
    group_of = np.full(len(rows), len(groups), dtype=np.intp)  # rows of no group
    for number, (_, positions) in enumerate(groups):
        group_of[positions] = number
    sizes = np.bincount(group_of, minlength=len(groups) + 1)
    columns = {
        str(n): _Column(rows[n], group_of, len(groups), sizes)
        for n in rows.columns
        if str(n) not in skip
    }
    del group_of
    keyed = set(keys)
    for number, (key, positions) in enumerate(groups):
        nan = _Blank(positions.size)
        data = {n: c.take(positions, number, n in keyed, nan) for n, c in columns.items()}
        yield key, pd.DataFrame(data, index=rows.index.take(positions), copy=False)
        del data, nan


class _Blank:
    """One read-only NaN array per float dtype for a group's missing float columns: they
    share it (a frame never writes into a column: copy-on-write)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.arrays: dict[Any, npt.NDArray[Any]] = {}

    def __call__(self, dtype: Any) -> npt.NDArray[Any]:
        if dtype not in self.arrays:
            array = np.full(self.n, np.nan, dtype=dtype)
            array.flags.writeable = False
            self.arrays[dtype] = array
        return self.arrays[dtype]
