"""Charts as self-contained inline SVG strings: for notebooks (they display themselves) and
for the run report (pasted into the page). No plotting library, no script, no font files.

Every label may come from upstream (supplier names, categories): all text is escaped.
"""

from __future__ import annotations

import html
import math
from typing import Iterable, Sequence

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f")
WIDTH, HEIGHT = 560, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 40, 34, 46


class Chart(str):
    """An SVG document; Jupyter shows it as a picture, a page can inline it as is."""

    def _repr_svg_(self) -> str:
        return str(self)


def _text(x: float, y: float, value, anchor: str = "middle", **attrs) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{html.escape(str(value))}</text>'


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high) or high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    return [round(first + i * step, 12) for i in range(int(math.ceil((high - first) / step - 1e-9)) + 1)]


def _fmt(value: float) -> str:
    """A short tick label: 0.05, 250, 12k, 8M."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def _frame(title: str, x_label: str, y_label: str, height: int = HEIGHT) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} '
            f'{height}" font-family="sans-serif" font-size="11" role="img" aria-label="{html.escape(title)}">',
            f'<rect width="{WIDTH}" height="{height}" fill="#fff"/>',
            _text(WIDTH / 2, 18, title, font_size=13, font_weight="bold"),
            _text(LEFT + (WIDTH - LEFT - RIGHT) / 2, height - 8, x_label),
            _text(14, TOP + (height - TOP - BOTTOM) / 2, y_label,
                  transform=f"rotate(-90 14 {TOP + (height - TOP - BOTTOM) / 2:.1f})")]


class _Axes:
    """Linear scales from data to the plot area, and their grid."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float], height: int = HEIGHT):
        self.x_ticks = nice_ticks(min(xs), max(xs))
        self.y_ticks = nice_ticks(min(0.0, min(ys)), max(ys))
        self.w, self.h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM

    def x(self, v: float) -> float:
        lo, hi = self.x_ticks[0], self.x_ticks[-1]
        return LEFT + (v - lo) / (hi - lo) * self.w

    def y(self, v: float) -> float:
        lo, hi = self.y_ticks[0], self.y_ticks[-1]
        return TOP + self.h - (v - lo) / (hi - lo) * self.h

    def grid(self, x_labels: bool = True) -> list[str]:
        parts = [f'<rect x="{LEFT}" y="{TOP}" width="{self.w}" height="{self.h}" fill="none" stroke="#999"/>']
        for t in self.y_ticks:
            parts.append(f'<line x1="{LEFT}" y1="{self.y(t):.1f}" x2="{LEFT + self.w}" y2="{self.y(t):.1f}" '
                         f'stroke="#eee"/>' + _text(LEFT - 6, self.y(t) + 4, _fmt(t), "end"))
        for t in self.x_ticks if x_labels else []:
            parts.append(_text(self.x(t), TOP + self.h + 15, _fmt(t)))
        return parts


def histogram(values: Iterable[float | None], title: str, x_label: str, bins: int = 20,
              color: str = PALETTE[0]) -> Chart:
    """Counts of values in equal-width bins (missing values are left out and counted in the title)."""
    given = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not given:
        return empty(title, "no values")
    low, high = min(given), max(given)
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for v in given:
        counts[min(int((v - low) / width), bins - 1)] += 1
    axes = _Axes([low, low + width * bins], [0, max(counts)])
    parts = _frame(f"{title} (n={len(given)})", x_label, "count") + axes.grid()
    for i, count in enumerate(counts):
        x0, x1 = axes.x(low + i * width), axes.x(low + (i + 1) * width)
        parts.append(f'<rect x="{x0:.1f}" y="{axes.y(count):.1f}" width="{max(x1 - x0 - 1, 1):.1f}" '
                     f'height="{axes.y(0) - axes.y(count):.1f}" fill="{color}"><title>{count}</title></rect>')
    return Chart("".join(parts) + "</svg>")


def bars(labels: Sequence, values: Sequence[float], title: str, value_label: str = "",
         colors: Sequence[str] | None = None, value_format: str = "{:,.0f}") -> Chart:
    """Horizontal bars, one per label (negative values extend left of zero)."""
    if not labels:
        return empty(title, "nothing to show")
    height = TOP + BOTTOM + 22 * len(labels)
    low, high = min(0.0, *values), max(0.0, *values)
    span = (high - low) or 1.0
    left, plot_w = 200, WIDTH - 200 - 80
    parts = _frame(title, value_label, "", height)

    def x(v: float) -> float:
        return left + (v - low) / span * plot_w

    for i, (label, value) in enumerate(zip(labels, values)):
        y = TOP + 22 * i
        color = colors[i % len(colors)] if colors else (PALETTE[1] if value < 0 else PALETTE[0])
        start, end = sorted((x(0), x(value)))
        parts.append(_text(left - 6, y + 14, _clip(label), "end"))
        parts.append(f'<rect x="{start:.1f}" y="{y + 3}" width="{max(end - start, 1):.1f}" height="16" '
                     f'fill="{color}"/>' + _text(end + 4, y + 15, value_format.format(value), "start"))
    parts.append(f'<line x1="{x(0):.1f}" y1="{TOP}" x2="{x(0):.1f}" y2="{height - BOTTOM}" stroke="#666"/>')
    return Chart("".join(parts) + "</svg>")


def lines(series: dict[str, Sequence[tuple[float, float]]], title: str, x_label: str, y_label: str,
          x_names: dict[float, str] | None = None, diagonal: bool = False) -> Chart:
    """One polyline with markers per named series; `x_names` labels x positions (e.g. dates)."""
    points = [p for s in series.values() for p in s if p[1] is not None]
    if not points:
        return empty(title, "no points")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if diagonal:  # the same scale on both axes, from zero
        top = max(max(xs), max(ys))
        xs, ys = xs + [0.0, top], ys + [0.0, top]
    axes = _Axes(xs, ys)
    parts = _frame(title, x_label, y_label) + axes.grid(x_labels=x_names is None)
    for position, name in _thin(sorted((x_names or {}).items()), 6):
        parts.append(_text(axes.x(position), TOP + axes.h + 15, name))
    if diagonal:
        top = min(axes.x_ticks[-1], axes.y_ticks[-1])
        parts.append(f'<line x1="{axes.x(0):.1f}" y1="{axes.y(0):.1f}" x2="{axes.x(top):.1f}" y2="{axes.y(top):.1f}" '
                     f'stroke="#888" stroke-dasharray="4 4"/>')
    for i, (name, values) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        shown = [(x, y) for x, y in values if y is not None]
        coords = " ".join(f"{axes.x(x):.1f},{axes.y(y):.1f}" for x, y in shown)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts += [f'<circle cx="{axes.x(x):.1f}" cy="{axes.y(y):.1f}" r="3" fill="{color}"/>' for x, y in shown]
        if len(series) > 1:
            parts.append(f'<rect x="{LEFT + 8}" y="{TOP + 6 + 14 * i}" width="10" height="10" fill="{color}"/>'
                         + _text(LEFT + 22, TOP + 15 + 14 * i, _clip(name), "start"))
    return Chart("".join(parts) + "</svg>")


def scatter(xs: Sequence[float], ys: Sequence[float], title: str, x_label: str, y_label: str,
            names: Sequence[str] | None = None, color: str = PALETTE[0]) -> Chart:
    """One dot per pair (pairs with a missing value are left out); names show on hover."""
    pairs = [(x, y, (names or [""] * len(xs))[i]) for i, (x, y) in enumerate(zip(xs, ys))
             if x is not None and y is not None]
    if not pairs:
        return empty(title, "no points")
    axes = _Axes([p[0] for p in pairs], [p[1] for p in pairs])
    parts = _frame(title, x_label, y_label) + axes.grid()
    parts += [f'<circle cx="{axes.x(x):.1f}" cy="{axes.y(y):.1f}" r="3.5" fill="{color}" fill-opacity="0.7">'
              f'<title>{html.escape(str(name))}</title></circle>' for x, y, name in pairs]
    return Chart("".join(parts) + "</svg>")


def calibration(bins: Sequence[dict], title: str = "Calibration by decile") -> Chart:
    """Observed rate against mean prediction per bin, with the diagonal of perfect calibration."""
    points = [(b["mean_predicted"], b["observed_rate"]) for b in bins]
    return lines({"model": points}, title, "mean predicted probability", "observed rate", diagonal=True)


def empty(title: str, message: str) -> Chart:
    parts = _frame(title, "", "", 120)
    return Chart("".join(parts) + _text(WIDTH / 2, 70, message, fill="#666") + "</svg>")


def _clip(label, limit: int = 32) -> str:
    text = str(label)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _thin(items: list, keep: int) -> list:
    step = max(1, math.ceil(len(items) / keep))
    return items[::step]
