"""Charts of a comparison table as inline SVG, drawn here: no plotting library, no script.

Two charts, chosen by the columns a table has (:func:`report_charts`):

* a scatter of one point per row (provider, or provider and suite when the table spans
  several suites) that trades quality against cost (``data-chart="quality-cost"``), or, when
  no row has both, quality against TTFT p50 (``"quality-ttft"``), or, without a quality
  column, TTFT p50 against output speed (``"ttft-speed"``). Confidence intervals
  (``<metric>_ci_low``/``_ci_high``) are drawn as error bars;
* grouped bars of the latency percentiles, TTFT p50/p95 and E2E p50/p95
  (``data-chart="latency"``), labelled with the load level when the table has several;
* for a load sweep (a provider at two or more levels), throughput against E2E p95, one
  line per provider through its levels (``data-chart="throughput-latency"``);
* :func:`lines_svg` draws lines over any x (the history's trend charts use it).

Every chart is one ``<svg role="img" aria-label="..." data-chart="...">`` element with a
``<title>``; every piece of text in it is escaped. Simulated providers (labelled
``"... (simulated)"`` by :func:`harness.report.summary.provider_label`) are drawn hollow
(scatter) or hatched (bars), and the legend says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from html import escape

import pandas as pd

SIMULATED_SUFFIX = " (simulated)"
# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000")
LATENCY_SERIES = (
    ("ttft_p50_ms", "TTFT p50", "#56B4E9"),
    ("ttft_p95_ms", "TTFT p95", "#0072B2"),
    ("e2e_p50_ms", "E2E p50", "#E69F00"),
    ("e2e_p95_ms", "E2E p95", "#D55E00"),
)
QUALITY_NAMES = (
    # The summary's primary quality score first: a correct abstention counts.
    "exact_match_abstain",
    "exact_match",
    "f1",
    "f1_abstain",
    "exact_match_with_abstention",
    "f1_with_abstention",
    "accuracy",
    "score",
)
COST_NAMES = ("usd_per_1k_requests", "cost_usd")

_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"
_AXIS = "#555"
_GRID = "#e4e4e4"
Formatter = Callable[[float], str]


@dataclass(frozen=True)
class Point:
    """One labelled point of a scatter, with an optional interval on the y axis."""

    label: str
    x: float
    y: float
    y_low: float | None = None
    y_high: float | None = None
    simulated: bool = False


@dataclass(frozen=True)
class Series:
    """One bar per group: a name for the legend, a value (or None) per group, a colour."""

    name: str
    values: Sequence[float | None]
    color: str


def is_simulated(label: str) -> bool:
    """Whether a provider label carries the ``(simulated)`` mark."""
    return label.endswith(SIMULATED_SUFFIX)


# Metrics that carry a confidence interval but measure speed, time, cost or volume.
_NOT_QUALITY = re.compile(r"(_ms|_s|_usd|_rps|_per_s|_p\d+|_rate|_mean)$|tps|^usd_|^requests$")


def is_quality_metric(name: str, columns: Collection[str]) -> bool:
    """A known quality name (:data:`QUALITY_NAMES`), or a column with ``_ci_low`` and
    ``_ci_high`` siblings among ``columns`` that is not a latency, speed or cost metric."""
    if name in QUALITY_NAMES:
        return True
    has_ci = f"{name}_ci_low" in columns and f"{name}_ci_high" in columns
    return has_ci and not _NOT_QUALITY.search(name)


def quality_column(table: pd.DataFrame) -> str | None:
    """The quality metric of a table (the first known name, else the first metric with a
    confidence interval that :func:`is_quality_metric` accepts), or None."""
    columns = [str(c) for c in table.columns]
    for name in QUALITY_NAMES:
        if name in columns:
            return name
    return next((name for name in columns if is_quality_metric(name, columns)), None)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2, 2.5 or 5 times a power of ten) covering
    ``[low, high]``; the first tick is <= ``low`` and the last >= ``high``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * 0.999)
    start = math.floor(low / step + 1e-9) * step
    ticks: list[float] = []
    value = start
    while value < high + step * 0.999 and len(ticks) < 50:
        ticks.append(round(value, 12))
        if value >= high - 1e-12 * max(1.0, abs(high)):
            break
        value = start + step * len(ticks)
    return ticks


def _number(value: float) -> str:
    """A short axis number: 1.2k, 350, 12.5, 0.25, 0.0012."""
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 10_000:
        return f"{value / 1000:,.0f}k"
    if magnitude >= 1000:
        return f"{value / 1000:.3g}k"
    if magnitude >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _usd(value: float) -> str:
    return "$" + _number(value)


def _text(
    x: float,
    y: float,
    content: str,
    *,
    size: int = 12,
    anchor: str = "start",
    fill: str = "#222",
    weight: str = "normal",
    extra: str = "",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}" font-weight="{weight}"{extra}>{escape(content)}</text>'
    )


def _text_width(content: str, size: int) -> float:
    """A rough width in pixels of ``content`` in a sans-serif font."""
    return len(content) * size * 0.58


def _open_svg(chart_id: str, title: str, width: int, height: int, description: str) -> str:
    label = f"{title}. {description}" if description else title
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{escape(chart_id)}" '
        f'role="img" aria-label="{escape(label)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{escape(_FONT)}">'
        f"<title>{escape(title)}</title>"
        f'<rect width="{width}" height="{height}" fill="#fff"/>'
        + _text(16, 24, title, size=15, weight="600")
    )


def _wrap(label: str, width_px: float, size: int, max_lines: int = 3) -> list[str]:
    """Split a label into lines that fit ``width_px``; the last line is cut with an ellipsis."""
    limit = max(4, int(width_px / (size * 0.58)))
    lines: list[str] = []
    current = ""
    for word in label.split():
        while len(word) > limit:  # a long word without spaces: cut it
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:limit])
            word = word[limit:]
        candidate = f"{current} {word}".strip()
        if len(candidate) <= limit:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: limit - 1] + "…"
    return lines or [""]


def scatter_svg(
    points: Sequence[Point],
    *,
    chart_id: str,
    title: str,
    x_label: str,
    y_label: str,
    x_format: Formatter = _number,
    y_format: Formatter = _number,
    footnote: str | None = None,
    width: int = 760,
    height: int = 440,
) -> str:
    """A labelled scatter plot; lower x and higher y are taken as better (a hint says so)."""
    left, right, top, bottom = 70, 30, 64, 62 + (18 if footnote else 0)
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [p.x for p in points]
    ys = [v for p in points for v in (p.y, p.y_low, p.y_high) if v is not None]
    description = f"{len(points)} points: " + "; ".join(
        f"{p.label}: {x_label} {x_format(p.x)}, {y_label} {y_format(p.y)}" for p in points
    )
    parts = [_open_svg(chart_id, title, width, height, description)]
    if not points:
        parts.append(_text(width / 2, height / 2, "no data", anchor="middle", fill=_AXIS))
        return "".join(parts) + "</svg>"
    x_span = (max(xs) - min(xs)) or abs(xs[0]) or 1.0
    y_span = (max(ys) - min(ys)) or abs(ys[0]) or 1.0
    x_ticks = nice_ticks(min(xs) - 0.08 * x_span, max(xs) + 0.08 * x_span)
    y_ticks = nice_ticks(min(ys) - 0.08 * y_span, max(ys) + 0.08 * y_span)
    if min(xs) >= 0 and x_ticks[0] < 0:
        x_ticks = nice_ticks(0.0, x_ticks[-1])
    if min(ys) >= 0 and y_ticks[0] < 0:
        y_ticks = nice_ticks(0.0, y_ticks[-1])
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def px(value: float) -> float:
        return left + (value - x0) / ((x1 - x0) or 1.0) * plot_w

    def py(value: float) -> float:
        return top + plot_h - (value - y0) / ((y1 - y0) or 1.0) * plot_h

    parts.extend(_legend_scatter(points, width))
    for tick in x_ticks:
        x = px(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="{_GRID}"/>'
        )
        parts.append(_text(x, top + plot_h + 18, x_format(tick), size=11, anchor="middle"))
    for tick in y_ticks:
        y = py(tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="{_GRID}"/>'
        )
        parts.append(_text(left - 8, y + 4, y_format(tick), size=11, anchor="end"))
    parts.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        f'stroke="{_AXIS}"/>'
    )
    parts.append(_text(left + plot_w / 2, top + plot_h + 40, x_label, anchor="middle"))
    parts.append(
        _text(
            18,
            top + plot_h / 2,
            y_label,
            anchor="middle",
            extra=f' transform="rotate(-90 18 {top + plot_h / 2:.1f})"',
        )
    )
    parts.append(_text(left + 8, top + 16, "better ↖", size=11, fill="#2a7a2a"))
    placed: list[tuple[float, float, float, float]] = []
    colors = _colors([p.label for p in points])
    for point in points:
        x, y = px(point.x), py(point.y)
        color = colors[point.label]
        if point.y_low is not None and point.y_high is not None:
            lo, hi = py(point.y_low), py(point.y_high)
            parts.append(
                f'<path d="M{x:.1f},{lo:.1f}V{hi:.1f}M{x - 5:.1f},{lo:.1f}h10M{x - 5:.1f},'
                f'{hi:.1f}h10" stroke="{color}" stroke-width="1.5" fill="none"/>'
            )
        fill = "#fff" if point.simulated else color
        dash = ' stroke-dasharray="3 2"' if point.simulated else ""
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6.5" fill="{fill}" stroke="{color}" '
            f'stroke-width="2.5"{dash}><title>{escape(point.label)}: {escape(x_label)} '
            f"{escape(x_format(point.x))}, {escape(y_label)} {escape(y_format(point.y))}"
            "</title></circle>"
        )
        parts.append(_place_label(point.label, x, y, placed, left, left + plot_w, top, plot_h))
    if footnote:
        parts.append(_text(left, height - 12, footnote, size=11, fill=_AXIS))
    return "".join(parts) + "</svg>"


def _legend_scatter(points: Sequence[Point], width: int) -> list[str]:
    if not any(p.simulated for p in points):
        return []
    x = width - 250
    return [
        f'<circle cx="{x}" cy="44" r="5.5" fill="#fff" stroke="#666" stroke-width="2" '
        'stroke-dasharray="3 2"/>',
        _text(x + 12, 48, "hollow = simulated provider", size=11, fill=_AXIS),
        f'<circle cx="{x - 120}" cy="44" r="5.5" fill="#666"/>',
        _text(x - 108, 48, "measured", size=11, fill=_AXIS),
    ]


def _place_label(
    label: str,
    x: float,
    y: float,
    placed: list[tuple[float, float, float, float]],
    x_min: float,
    x_max: float,
    top: float,
    plot_h: float,
) -> str:
    """Put a point's label beside it where it overlaps no label placed before."""
    size = 12
    w, h = _text_width(label, size), size + 2
    candidates = []
    for dy in (0, -14, 14, -28, 28, -42, 42):
        candidates.append((x + 10, y + 4 + dy, "start"))
        candidates.append((x - 10, y + 4 + dy, "end"))
    chosen = candidates[0]
    for cx, cy, anchor in candidates:
        bx = cx if anchor == "start" else cx - w
        box = (bx, cy - size, bx + w, cy - size + h)
        inside = bx >= x_min + 2 and box[2] <= x_max - 2 and top < box[1] and box[3] < top + plot_h
        clash = any(
            box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3] for o in placed
        )
        if inside and not clash:
            chosen = (cx, cy, anchor)
            placed.append(box)
            break
    else:
        cx, cy, anchor = chosen
        bx = cx if anchor == "start" else cx - w
        placed.append((bx, cy - size, bx + w, cy - size + h))
    cx, cy, anchor = chosen
    return _text(cx, cy, label, size=size, anchor=anchor, extra=' class="point-label"')


def _colors(labels: Sequence[str]) -> dict[str, str]:
    unique = list(dict.fromkeys(labels))
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(unique)}


def grouped_bars_svg(
    groups: Sequence[str],
    series: Sequence[Series],
    *,
    chart_id: str,
    title: str,
    y_label: str,
    simulated: Sequence[bool] | None = None,
    y_format: Formatter = _number,
    footnote: str | None = None,
    max_width: int = 1180,
    height: int = 420,
) -> str:
    """Bars of several series side by side for each group, on a zero-based y axis."""
    simulated = list(simulated) if simulated is not None else [is_simulated(g) for g in groups]
    left, right, top = 70, 24, 70
    n_groups, n_series = max(len(groups), 1), max(len(series), 1)
    group_w = max(60.0, min(190.0, (max_width - left - right) / n_groups))
    width = int(max(640, left + right + group_w * n_groups))
    group_w = (width - left - right) / n_groups
    label_lines = [_wrap(g, group_w - 8, 11) for g in groups]
    bottom = (
        30 + 14 * max((len(lines) for lines in label_lines), default=1) + (18 if footnote else 0)
    )
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    description = "; ".join(
        f"{group}: "
        + ", ".join(
            f"{s.name} {'n/a' if s.values[i] is None else y_format(float(s.values[i] or 0))}"
            for s in series
        )
        for i, group in enumerate(groups)
    )
    parts = [_open_svg(chart_id, title, width, height, description)]
    ticks = nice_ticks(0.0, max(values) if values else 1.0)
    y1 = ticks[-1] or 1.0

    def py(value: float) -> float:
        return top + plot_h - value / y1 * plot_h

    hatch = f"{chart_id}-hatch"
    parts.append(
        f'<defs><pattern id="{escape(hatch)}" width="6" height="6" '
        'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        '<rect width="3" height="6" fill="#fff" fill-opacity="0.55"/></pattern></defs>'
    )
    # Legend: one swatch per series, then the simulated mark.
    lx = left
    for s in series:
        parts.append(f'<rect x="{lx}" y="38" width="12" height="12" fill="{s.color}"/>')
        parts.append(_text(lx + 17, 48, s.name, size=11))
        lx += 30 + int(_text_width(s.name, 11))
    if any(simulated):
        parts.append(f'<rect x="{lx}" y="38" width="12" height="12" fill="#777"/>')
        parts.append(f'<rect x="{lx}" y="38" width="12" height="12" fill="url(#{hatch})"/>')
        parts.append(_text(lx + 17, 48, "hatched = simulated provider", size=11))
    for tick in ticks:
        y = py(tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="{_GRID}"/>'
        )
        parts.append(_text(left - 8, y + 4, y_format(tick), size=11, anchor="end"))
    parts.append(
        _text(
            18,
            top + plot_h / 2,
            y_label,
            anchor="middle",
            extra=f' transform="rotate(-90 18 {top + plot_h / 2:.1f})"',
        )
    )
    inner = group_w * 0.8
    bar_w = inner / n_series
    for g, group in enumerate(groups):
        gx = left + g * group_w + (group_w - inner) / 2
        for k, s in enumerate(series):
            value = s.values[g] if g < len(s.values) else None
            bx = gx + k * bar_w
            if value is None or not math.isfinite(value):
                parts.append(
                    _text(bx + bar_w / 2, top + plot_h - 4, "n/a", size=9, anchor="middle")
                )
                continue
            y = py(value)
            h = top + plot_h - y
            tip = f"<title>{escape(group)} · {escape(s.name)}: {escape(y_format(value))}</title>"
            parts.append(
                f'<rect class="bar" x="{bx + 1:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" '
                f'height="{h:.1f}" fill="{s.color}">{tip}</rect>'
            )
            if simulated[g]:
                parts.append(
                    f'<rect x="{bx + 1:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" '
                    f'height="{h:.1f}" fill="url(#{escape(hatch)})"/>'
                )
            if bar_w >= 24:
                parts.append(_text(bx + bar_w / 2, y - 4, _number(value), size=10, anchor="middle"))
        for i, line in enumerate(label_lines[g]):
            parts.append(
                _text(
                    left + (g + 0.5) * group_w,
                    top + plot_h + 18 + 14 * i,
                    line,
                    size=11,
                    anchor="middle",
                    fill="#8a5a00" if simulated[g] else "#222",
                    extra=' font-style="italic"' if simulated[g] else "",
                )
            )
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="{_AXIS}"/>'
    )
    if footnote:
        parts.append(_text(left, height - 10, footnote, size=11, fill=_AXIS))
    return "".join(parts) + "</svg>"


def _float(value: object) -> float | None:
    """A finite float, or None for None/NaN/NA/text."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _labels(table: pd.DataFrame) -> list[str]:
    """Row labels: the provider, with the suite when the table spans several suites and the
    load level (``@ c=4``) when it spans several levels, so that a sweep's bars say which
    level they are."""
    providers = [str(p) for p in table["provider"]] if "provider" in table else []
    if not providers:
        providers = [f"row {i + 1}" for i in range(len(table))]
    labels = providers
    if "suite" in table and table["suite"].nunique(dropna=True) > 1:
        labels = [f"{p} · {s}" for p, s in zip(labels, table["suite"], strict=True)]
    if _levels_vary(table):
        labels = [
            label if _no_level(level) else f"{label} @ {level}"
            for label, level in zip(labels, table["load_level"], strict=True)
        ]
    return labels


def _no_level(level: object) -> bool:
    return level is None or (isinstance(level, float) and math.isnan(level)) or level == "-"


def _levels_vary(table: pd.DataFrame) -> bool:
    if "load_level" not in table:
        return False
    levels = {str(v) for v in table["load_level"] if not _no_level(v)}
    return len(levels) > 1 or (bool(levels) and any(_no_level(v) for v in table["load_level"]))


def _simulated_rows(table: pd.DataFrame, labels: Sequence[str]) -> list[bool]:
    flags = [is_simulated(str(p)) for p in table["provider"]] if "provider" in table else []
    flags = flags or [is_simulated(label) for label in labels]
    if "simulated" in table:
        flags = [f or _float(v) == 1.0 for f, v in zip(flags, table["simulated"], strict=True)]
    return flags


def _scatter_for(table: pd.DataFrame) -> str | None:
    labels = _labels(table)
    simulated = _simulated_rows(table, labels)
    quality = quality_column(table)
    cost = next((c for c in COST_NAMES if c in table), None)
    candidates: list[tuple[str, str, str, str, str, Formatter]] = []
    if quality and cost:
        x_name = "$ per 1k requests" if cost == "usd_per_1k_requests" else "cost (USD)"
        candidates.append(("quality-cost", cost, quality, x_name, "cost", _usd))
    if quality and "ttft_p50_ms" in table:
        candidates.append(("quality-ttft", "ttft_p50_ms", quality, "TTFT p50 (ms)", "", _number))
    if "ttft_p50_ms" in table and "output_tps_p50" in table:
        candidates.append(
            ("ttft-speed", "ttft_p50_ms", "output_tps_p50", "TTFT p50 (ms)", "", _number)
        )
    for chart_id, x_col, y_col, x_label, kind, x_format in candidates:
        points: list[Point] = []
        skipped: list[str] = []
        for i, label in enumerate(labels):
            x, y = _float(table[x_col].iloc[i]), _float(table[y_col].iloc[i])
            if y is None:
                continue
            if x is None:
                skipped.append(label)
                continue
            low = _float(table[f"{y_col}_ci_low"].iloc[i]) if f"{y_col}_ci_low" in table else None
            high = (
                _float(table[f"{y_col}_ci_high"].iloc[i]) if f"{y_col}_ci_high" in table else None
            )
            points.append(Point(label, x, y, low, high, simulated[i]))
        if not points:
            continue
        footnote = None
        if skipped:
            reason = "no price" if kind == "cost" else "no value"
            footnote = f"Not plotted ({reason}): {', '.join(skipped)}"
        y_label = "output tokens/s (p50)" if y_col == "output_tps_p50" else y_col
        title = {
            "quality-cost": f"Quality ({y_col}) vs cost",
            "quality-ttft": f"Quality ({y_col}) vs time to first token",
            "ttft-speed": "Time to first token vs output speed",
        }[chart_id]
        return scatter_svg(
            points,
            chart_id=chart_id,
            title=title,
            x_label=x_label,
            y_label=y_label,
            x_format=x_format,
            footnote=footnote,
        )
    return None


def _latency_for(table: pd.DataFrame) -> str | None:
    present = [(c, name, color) for c, name, color in LATENCY_SERIES if c in table]
    if not present or len(table) == 0:
        return None
    labels = _labels(table)
    series = [
        Series(name, [_float(v) for v in table[column]], color) for column, name, color in present
    ]
    return grouped_bars_svg(
        labels,
        series,
        chart_id="latency",
        title="Latency percentiles per provider"
        + (" and load level" if _levels_vary(table) else ""),
        y_label="milliseconds",
        simulated=_simulated_rows(table, labels),
        footnote="Successful requests only; TTFT = first output text, E2E = end of stream.",
    )


def lines_svg(
    lines: Sequence[tuple[str, Sequence[tuple[float, float, str]]]],
    *,
    chart_id: str,
    title: str,
    x_label: str,
    y_label: str,
    x_format: Formatter = _number,
    y_format: Formatter = _number,
    footnote: str | None = None,
    marks: Sequence[tuple[str, float, float, str]] = (),
    width: int = 760,
    height: int = 420,
) -> str:
    """One polyline per named series through its (x, y, point label) points, each point
    labelled; ``marks`` are (series, x, y, text) points drawn as a ring with their text
    (a change point). Series named ``... (simulated)`` are dashed."""
    left, right, top, bottom = 70, 150, 64, 62 + (18 if footnote else 0)
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [(x, y) for _, pts in lines for x, y, _ in pts]
    description = "; ".join(
        f"{name}: " + ", ".join(f"{lab} {x_format(x)} → {y_format(y)}" for x, y, lab in pts)
        for name, pts in lines
    )
    parts = [_open_svg(chart_id, title, width, height, description)]
    if not points:
        parts.append(_text(width / 2, height / 2, "no data", anchor="middle", fill=_AXIS))
        return "".join(parts) + "</svg>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_span = (max(xs) - min(xs)) or abs(xs[0]) or 1.0
    y_span = (max(ys) - min(ys)) or abs(ys[0]) or 1.0
    x_ticks = nice_ticks(min(xs) - 0.05 * x_span, max(xs) + 0.05 * x_span)
    y_ticks = nice_ticks(min(ys) - 0.08 * y_span, max(ys) + 0.08 * y_span)
    if min(xs) >= 0 and x_ticks[0] < 0:
        x_ticks = nice_ticks(0.0, x_ticks[-1])
    if min(ys) >= 0 and y_ticks[0] < 0:
        y_ticks = nice_ticks(0.0, y_ticks[-1])
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def px(value: float) -> float:
        return left + (value - x0) / ((x1 - x0) or 1.0) * plot_w

    def py(value: float) -> float:
        return top + plot_h - (value - y0) / ((y1 - y0) or 1.0) * plot_h

    for tick in x_ticks:
        x = px(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="{_GRID}"/>'
        )
        parts.append(_text(x, top + plot_h + 18, x_format(tick), size=11, anchor="middle"))
    for tick in y_ticks:
        y = py(tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="{_GRID}"/>'
        )
        parts.append(_text(left - 8, y + 4, y_format(tick), size=11, anchor="end"))
    parts.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
        f'stroke="{_AXIS}"/>'
    )
    parts.append(_text(left + plot_w / 2, top + plot_h + 40, x_label, anchor="middle"))
    parts.append(
        _text(
            18,
            top + plot_h / 2,
            y_label,
            anchor="middle",
            extra=f' transform="rotate(-90 18 {top + plot_h / 2:.1f})"',
        )
    )
    colors = _colors([name for name, _ in lines])
    placed: list[tuple[float, float, float, float]] = []
    for k, (name, pts) in enumerate(lines):
        color = colors[name]
        dash = ' stroke-dasharray="6 3"' if is_simulated(name) else ""
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y, _ in pts)
        parts.append(
            f'<polyline class="series" points="{path}" fill="none" stroke="{color}" '
            f'stroke-width="2"{dash}><title>{escape(name)}</title></polyline>'
        )
        for x, y, lab in pts:
            fill = "#fff" if is_simulated(name) else color
            parts.append(
                f'<circle class="point" cx="{px(x):.1f}" cy="{py(y):.1f}" r="4.5" fill="{fill}" '
                f'stroke="{color}" stroke-width="2"><title>{escape(name)} {escape(lab)}: '
                f"{escape(x_label)} {escape(x_format(x))}, {escape(y_label)} "
                f"{escape(y_format(y))}</title></circle>"
            )
            if lab:
                parts.append(
                    _place_label(lab, px(x), py(y), placed, left, left + plot_w, top, plot_h)
                )
        # Legend on the right: one swatch per series.
        ly = top + 10 + 18 * k
        parts.append(
            f'<line x1="{left + plot_w + 12}" y1="{ly - 4}" x2="{left + plot_w + 30}" '
            f'y2="{ly - 4}" stroke="{color}" stroke-width="2"{dash}/>'
        )
        short = name if len(name) <= 18 else name[:17] + "…"
        parts.append(_text(left + plot_w + 34, ly, short, size=11))
    for name, x, y, text in marks:
        color = colors.get(name, "#000")
        parts.append(
            f'<circle class="change-point" cx="{px(x):.1f}" cy="{py(y):.1f}" r="9" fill="none" '
            f'stroke="{color}" stroke-width="2"><title>{escape(name)}: {escape(text)}</title>'
            "</circle>"
        )
        parts.append(_text(px(x), py(y) - 12, text, size=10, anchor="middle", fill=color))
    if footnote:
        parts.append(_text(left, height - 12, footnote, size=11, fill=_AXIS))
    return "".join(parts) + "</svg>"


def _throughput_for(table: pd.DataFrame) -> str | None:
    """Throughput vs E2E p95 latency, one line per provider (and suite) over its load
    levels: the curve of a load sweep. None unless some provider has two levels."""
    needed = {"load_level", "provider", "throughput_rps", "e2e_p95_ms"}
    if not needed <= set(table.columns) or not _levels_vary(table):
        return None
    several_suites = "suite" in table and table["suite"].nunique(dropna=True) > 1
    lines: dict[str, list[tuple[float, float, str]]] = {}
    for _, row in table.iterrows():
        x, y = _float(row["throughput_rps"]), _float(row["e2e_p95_ms"])
        if x is None or y is None or _no_level(row["load_level"]):
            continue
        name = str(row["provider"]) + (f" · {row['suite']}" if several_suites else "")
        lines.setdefault(name, []).append((x, y, str(row["load_level"])))
    swept = [(name, sorted(pts)) for name, pts in lines.items() if len(pts) > 1]
    if not swept:
        return None
    return lines_svg(
        swept,
        chart_id="throughput-latency",
        title="Throughput vs latency per load level",
        x_label="throughput (requests/s)",
        y_label="E2E p95 (ms)",
        footnote="One point per load level; up and to the left of the knee the provider"
        " queues requests.",
    )


def report_charts(table: pd.DataFrame) -> list[str]:
    """The SVG charts that the columns of a comparison table allow: quality vs cost (or a
    fallback scatter), latency percentiles per provider and load level, and, for a load
    sweep, throughput vs latency per level."""
    charts = [_scatter_for(table), _latency_for(table), _throughput_for(table)]
    return [chart for chart in charts if chart is not None]


def quality_cost_chart(table: pd.DataFrame) -> str | None:
    """Quality against cost with confidence intervals (or a fallback scatter), one point
    per row of ``table`` (e.g. the leaderboard: one per provider)."""
    return _scatter_for(table)


def latency_chart(table: pd.DataFrame, title: str | None = None) -> str | None:
    """Latency percentiles per provider and load level; ``title`` replaces the default."""
    svg = _latency_for(table)
    if svg is None or title is None:
        return svg
    default = "Latency percentiles per provider" + (
        " and load level" if _levels_vary(table) else ""
    )
    return svg.replace(escape(default), escape(title))


def throughput_chart(table: pd.DataFrame, title: str | None = None) -> str | None:
    """Throughput vs E2E p95 per load level, for a load sweep; None otherwise."""
    svg = _throughput_for(table)
    if svg is None or title is None:
        return svg
    return svg.replace("Throughput vs latency per load level", escape(title))
