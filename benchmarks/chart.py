"""A self-contained SVG of seconds against orders (log-log), one line per series."""

from __future__ import annotations

import math
from xml.sax.saxutils import escape

WIDTH, HEIGHT, PAD = 720, 440, 70
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#7f7f7f", "#8c564b")


def series(result: dict) -> dict[str, list[tuple[float, float]]]:
    """Per series name: (orders, seconds) points, from the harness's result."""
    lines: dict[str, list[tuple[float, float]]] = {}

    def add(name, orders, seconds):
        if orders and seconds and seconds > 0:
            lines.setdefault(name, []).append((float(orders), float(seconds)))

    for scale in result["scales"]:
        orders, s = scale["orders"], scale["summary"]
        add("full refresh (ingest+score+publish)", orders, s["full_refresh_wall_seconds"])
        add("incremental day", orders, s["incremental_day_wall_seconds"])
        add("floor: DuckDB count(*) of landing", orders, s["floor_seconds"])
        for stage in ("ingest", "score"):
            add(f"{stage} (full)", orders, scale["full_refresh"][stage].get("wall_seconds"))
        peer = scale["full_refresh"]["pandas_peer"]
        if peer.get("ok"):
            add("pandas peer", orders, peer["wall_seconds"])
    return lines


def svg(result: dict) -> str:
    lines = series(result)
    points = [p for pts in lines.values() for p in pts]
    if not points:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="60"><text x="10" y="30">no data</text></svg>'
    xs, ys = [math.log10(p[0]) for p in points], [math.log10(p[1]) for p in points]
    x0, x1 = math.floor(min(xs)), math.ceil(max(xs)) + (1 if math.ceil(max(xs)) == math.floor(min(xs)) else 0)
    y0, y1 = math.floor(min(ys)), math.ceil(max(ys)) + (1 if math.ceil(max(ys)) == math.floor(min(ys)) else 0)

    def px(x):
        return PAD + (math.log10(x) - x0) / (x1 - x0) * (WIDTH - 2 * PAD - 160)

    def py(y):
        return HEIGHT - PAD - (math.log10(y) - y0) / (y1 - y0) * (HEIGHT - 2 * PAD)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" '
           f'font-size="11"><rect width="100%" height="100%" fill="white"/>',
           f'<text x="{PAD}" y="24" font-size="14">Wall seconds against orders (log-log), {escape(result["started_at"])}</text>']
    for e in range(x0, x1 + 1):
        x = px(10 ** e)
        out.append(f'<line x1="{x:.1f}" y1="{PAD}" x2="{x:.1f}" y2="{HEIGHT - PAD}" stroke="#ddd"/>'
                   f'<text x="{x:.1f}" y="{HEIGHT - PAD + 16}" text-anchor="middle">{10 ** e:,}</text>')
    for e in range(y0, y1 + 1):
        y = py(10 ** e)
        out.append(f'<line x1="{PAD}" y1="{y:.1f}" x2="{px(10 ** x1):.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                   f'<text x="{PAD - 6}" y="{y + 4:.1f}" text-anchor="end">{10.0 ** e:g} s</text>')
    out.append(f'<text x="{(PAD + px(10 ** x1)) / 2:.1f}" y="{HEIGHT - 20}" text-anchor="middle">orders</text>')
    for i, (name, pts) in enumerate(lines.items()):
        colour = COLOURS[i % len(COLOURS)]
        pts = sorted(pts)
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"><title>{escape(name)}: '
                f'{x:,.0f} orders, {y:.1f} s</title></circle>' for x, y in pts]
        ly = PAD + 16 * i
        out.append(f'<rect x="{WIDTH - 220}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{WIDTH - 205}" y="{ly + 1}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
