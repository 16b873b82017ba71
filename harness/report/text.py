"""Tables for a terminal or a pull request, every cell formatted by its column's meaning.

One path for every printed table (``summarize``, ``run``, ``leaderboard``, ``diff``,
``history``, ``models``, the dry run): each cell becomes text with
:func:`harness.report.export.format_value` for its column's kind (dollars, ms, percentages,
counts, p-values, ...) *before* tabulate sees it, and tabulate is told not to parse numbers.
Left to itself, tabulate re-parses numeric-looking strings and applies one ``floatfmt`` to a
column that is all numbers, so ``0.0167`` printed as ``0.0`` unless a ``no price`` cell in the
same column made it a text column.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from harness.report.export import NUMERIC_KINDS, Kind, column_kind, format_value

MISSING = "-"


def column_kinds(table: pd.DataFrame, kinds: Mapping[str, Kind] | None = None) -> list[Kind]:
    """The kind of each column: ``kinds`` where given, else from its name and dtype."""
    columns = [str(c).lower() for c in table.columns]
    given = kinds or {}
    return [
        given.get(str(name)) or column_kind(str(name), table[name], columns)
        for name in table.columns
    ]


def cell_text(value: object, kind: Kind, missing: str = MISSING) -> str:
    """One cell as people read it; ``missing`` for None/NaN."""
    text = format_value(value, kind)
    return missing if text is None else text


def text_cells(
    table: pd.DataFrame,
    kinds: Mapping[str, Kind] | None = None,
    missing: Mapping[str, str] | None = None,
) -> tuple[list[list[str]], list[str]]:
    """Every cell as text, and each column's alignment (numbers right, text left).

    ``missing`` gives a column its own text for a missing value (``no price`` for a cost).
    """
    resolved = column_kinds(table, kinds)
    empty = missing or {}
    rows = [
        [
            cell_text(value, kind, empty.get(str(name), MISSING))
            for name, value, kind in zip(table.columns, row, resolved, strict=True)
        ]
        for row in table.itertuples(index=False, name=None)
    ]
    align = ["right" if kind in NUMERIC_KINDS else "left" for kind in resolved]
    return rows, align


def render_text(
    table: pd.DataFrame,
    fmt: str = "table",
    kinds: Mapping[str, Kind] | None = None,
    missing: Mapping[str, str] | None = None,
    *,
    align: list[str] | None = None,
) -> str:
    """``table`` as a terminal table (``fmt="table"``) or a GitHub pipe table (``"markdown"``).

    Cells that are already text (e.g. a formatted confidence interval) stay as they are;
    ``align`` overrides the computed alignment (one entry per column).
    """
    from tabulate import tabulate

    rows, computed = text_cells(table, kinds, missing)
    headers = [str(c) for c in table.columns]
    if not headers:
        return ""
    return str(
        tabulate(
            rows,
            headers=headers,
            tablefmt="pipe" if fmt == "markdown" else "simple",  # pipe: aligned columns
            colalign=align or computed,
            disable_numparse=True,
        )
    )
