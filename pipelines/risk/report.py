"""Self-contained HTML pages for a backtest and a trained model: tables and an inline SVG
calibration chart (no JavaScript, no external file: it opens anywhere, offline)."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

from pipelines.risk.evaluation import auc_lift_share

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f")
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.6rem 0 1.4rem}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.ok{color:#17733a;font-weight:600}
.no{color:#b00020;font-weight:600}code{background:#f6f6f6;padding:1px 4px}.muted{color:#666}
"""


def _fmt(value, digits: int = 5) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell if isinstance(cell, _Raw) else _fmt(cell)}</td>" for cell in row)
                   + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _verdict(ok: bool | None) -> _Raw:
    if ok is None:
        return _Raw('<span class="muted">n/a</span>')
    return _Raw('<span class="ok">met</span>' if ok else '<span class="no">not met</span>')


def calibration_svg(series: dict[str, list[dict]], width: int = 760, height: int = 420) -> str:
    """Observed defect rate against mean prediction per decile, one line per system, with
    the diagonal of perfect calibration."""
    left, right, top_margin, bottom = 60, 300, 20, 50
    peak = max([b[k] for bins in series.values() for b in bins for k in ("mean_predicted", "observed_rate")] + [0.01])
    step = _nice_step(peak / 5)
    top = step * math.ceil(peak / step)
    plot_w, plot_h = width - left - right, height - top_margin - bottom

    def x(v):
        return left + v / top * plot_w

    def y(v):
        return top_margin + plot_h - v / top * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12" role="img" aria-label="calibration by decile">',
             f'<rect x="{left}" y="{top_margin}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#999"/>']
    ticks = [i * step for i in range(int(round(top / step)) + 1)]
    for t in ticks:
        parts.append(f'<line x1="{x(t):.1f}" y1="{top_margin}" x2="{x(t):.1f}" y2="{top_margin + plot_h}" '
                     f'stroke="#eee"/><text x="{x(t):.1f}" y="{top_margin + plot_h + 16}" '
                     f'text-anchor="middle">{t:.3g}</text>')
        parts.append(f'<line x1="{left}" y1="{y(t):.1f}" x2="{left + plot_w}" y2="{y(t):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t:.3g}</text>')
    parts.append(f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(top):.1f}" y2="{y(top):.1f}" stroke="#888" '
                 f'stroke-dasharray="4 4"/>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 12}" text-anchor="middle">mean predicted '
                 f'probability (decile)</text><text x="16" y="{top_margin + plot_h / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 16 {top_margin + plot_h / 2})">observed defect rate</text>')
    for i, (name, bins) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        points = " ".join(f"{x(b['mean_predicted']):.1f},{y(b['observed_rate']):.1f}" for b in bins)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts += [f'<circle cx="{x(b["mean_predicted"]):.1f}" cy="{y(b["observed_rate"]):.1f}" r="3" '
                  f'fill="{color}"/>' for b in bins]
        ly = top_margin + 14 + 18 * i
        parts.append(f'<line x1="{left + plot_w + 12}" y1="{ly - 4}" x2="{left + plot_w + 32}" y2="{ly - 4}" '
                     f'stroke="{color}" stroke-width="2"/><text x="{left + plot_w + 38}" y="{ly}">'
                     f'{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _nice_step(raw: float) -> float:
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def backtest_section(figures: dict) -> str:
    """Targets, pooled figures per system, a calibration chart and table, and per-fold figures."""
    pooled, chosen, t = figures["pooled"], figures["model"], figures["targets"]
    ceiling = pooled.get("truth", {}).get("auc")
    rows = [[_Raw(f"<b>{html.escape(name)}</b>") if name == chosen else name, f["auc"],
             auc_lift_share(f["auc"], ceiling), f["brier"], f["log_loss"], f["ece"], f["mean_predicted"],
             f["defect_rate"], f["orders"]] for name, f in pooled.items()]
    beats = ", ".join(f"{b}: {'yes' if ok else 'no'}" for b, ok in t["beats_baselines"].items())
    targets = _table(["target", "value", "verdict"], [
        ["(AUC − 0.5) / (AUC_truth − 0.5) ≥ 0.9", t["auc_lift_share_of_truth"], _verdict(t["auc_lift_share_met"])],
        ["ECE over deciles < 0.01", t["ece"], _verdict(t["ece_met"])],
        ["better than every baseline on AUC and Brier", beats, _verdict(t["beats_every_baseline"])]])
    shown = [chosen, *(s for s in ("supplier_shrunk_rate", "supplier_raw_rate", "truth") if s in pooled)]
    chart = calibration_svg({s: pooled[s]["calibration"] for s in shown})
    decile_rows = [[i + 1, b["orders"], b["mean_predicted"], b["observed_rate"],
                    b["mean_predicted"] - b["observed_rate"]] for i, b in enumerate(pooled[chosen]["calibration"])]
    fold_rows = [[f["number"], f"{f['train_first']} .. {f['train_last']}", f["cutoff"],
                  f"{f['test_first']} .. {f['test_last']}", f["train_orders"], f["test_orders_placed"],
                  f["test_orders_matured"], f["systems"][chosen]["auc"], f["systems"].get("truth", {}).get("auc"),
                  f["systems"][chosen]["brier"], f["systems"][chosen]["ece"]] for f in figures["folds"]]
    return (f"<h2>Backtest (evaluated {html.escape(figures['evaluation_date'])}; model "
            f"<code>{html.escape(chosen)}</code>)</h2>{targets}"
            "<h3>Pooled over the folds' test orders</h3>"
            + _table(["system", "AUC", "lift share of truth", "Brier", "log loss", "ECE", "mean predicted",
                      "observed rate", "orders"], rows)
            + f"<h3>Calibration by decile</h3>{chart}"
            + _table(["decile", "orders", "mean predicted", "observed", "gap"], decile_rows)
            + "<h3>Folds</h3><p class='muted'>Each fold trains on the orders placed in its training window "
              "whose outcome had matured by its cut-off, and tests on the orders placed after the cut-off, "
              "labelled at the evaluation date.</p>"
            + _table(["fold", "training placed", "cut-off", "test placed", "training orders", "test orders",
                      "test matured", "AUC", "AUC truth", "Brier", "ECE"], fold_rows))


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")


def backtest_page(figures: dict) -> str:
    return page(f"Risk model backtest, {figures['evaluation_date']}", backtest_section(figures))


def training_page(metadata: dict, backtest: dict | None) -> str:
    """What was trained (window, rows, fingerprint, libraries, features) and its backtest."""
    w = metadata["training"]
    facts = _table(["", ""], [
        ["model version", metadata["model_version"]], ["estimator", metadata["estimator"]],
        ["trained as of", w["as_of"]], ["orders placed", f"{w['first_placed_on']} .. {w['last_placed_on']}"],
        ["training orders", w["orders"]], ["defect rate", w["defect_rate"]],
        ["fitted on / calibrated on", f"{w['fit_orders']:,} / {w['calibration_orders']:,}"],
        ["data fingerprint (SHA-256)", metadata["data_fingerprint"]], ["config hash", metadata["config_hash"]]])
    libraries = _table(["library", "version"], [[k, v] for k, v in metadata["libraries"].items()])
    features = _table(["#", "feature", "dtype"], [[i + 1, f["name"], f["dtype"]]
                                                  for i, f in enumerate(metadata["features"])])
    section = backtest_section(backtest) if backtest else "<p class='muted'>No backtest was run.</p>"
    return page(f"Risk model {metadata['model_version']}",
                f"{facts}{section}<h2>Features</h2>{features}<h2>Libraries</h2>{libraries}")


def write_backtest(artifacts: Path, figures: dict) -> Path:
    """<artifacts>/backtests/as_of=<date>/report.html and figures.json; returns the page's path."""
    folder = artifacts / "backtests" / f"as_of={figures['evaluation_date']}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "figures.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    page_path = folder / "report.html"
    page_path.write_text(backtest_page(figures), encoding="utf-8")
    return page_path
