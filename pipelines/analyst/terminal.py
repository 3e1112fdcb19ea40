"""A scorecard drawn for the terminal (`suprel explain`): rich tables, reasons in words.

Every cell is a `rich.text.Text`: a supplier called `[bold red]x[/]` shows those
characters, never a style (rich parses plain strings in a table as markup).
"""

from __future__ import annotations

import polars as pl
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pipelines.analyst.scorecard import Scorecard

STATUS_STYLE = {"meets": "green", "misses": "red", "no_evidence": "dim"}
PROTECTION_STYLE = {"eligible": "green", "watch": "yellow", "suspended": "red", "insufficient_history": "dim"}


def _t(value, style: str = "", digits: int = 3) -> Text:
    if value is None:
        return Text("–", style="dim")
    if isinstance(value, float):
        return Text(f"{value:,.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}", style=style)
    return Text(str(value), style=style)


def _rate(value) -> Text:
    return _t(None) if value is None else Text(f"{value:.1%}")


def _rows(frame) -> list[dict]:
    return frame.to_dicts() if isinstance(frame, pl.DataFrame) else frame.to_dict("records")


def header(card: Scorecard) -> Panel:
    p, d = card.published, card.decision
    status = d["protection_status"]
    lines = [
        Text.assemble((str(p["supplier_name"] or "(no name)"), "bold"), f"  {card.supplier_id}  ",
                      (f"{p['main_category'] or '-'} / {p['country_code'] or '-'}", "dim")),
        Text.assemble("score ", (f"{d['reliability_score']:.1f}", "bold"),
                      f"  (conservative {d['reliability_score_lower']:.1f}, optimistic "
                      f"{d['reliability_score_upper'] or float('nan'):.1f})   tier ", (str(d["tier"]), "bold"),
                      f"   rank {d['rank_overall']} overall, {d['rank_in_category']} in category"),
        Text.assemble("protection ", (str(status), PROTECTION_STYLE.get(status, "")),
                      f" since {d['status_since'] or '-'} (was {d['previous_status'] or '-'})   limit ",
                      (f"{float(d['protection_limit_usd']):,.2f} USD", "bold"),
                      f"   risk {card.risk['probability']:.1%}" if card.risk["probability"] is not None else ""),
    ]
    return Panel(Group(*lines), title=Text(f"Scorecard as of {card.as_of_date}"), title_align="left")


def reasons(card: Scorecard) -> Table:
    table = Table(title=Text("Why: reason codes, most important first"), show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("code")
    table.add_column("in words", overflow="fold")
    for i, r in enumerate(card.reasons, 1):
        table.add_row(_t(i), _t(r["code"], "bold"), _t(r["explanation"]))
    return table


def metrics(card: Scorecard) -> Table:
    table = Table(title=Text("Metrics: numerator / denominator (raw; buyer-capped in brackets), rate, target, status"))
    for name in ("metric", "window", "numerator / denominator", "capped", "rate", "target", "status"):
        table.add_column(name, justify="right" if name not in ("metric", "status") else "left")
    for m in _rows(card.metrics):
        money = m["metric"] in ("gmv_usd", "refund_share")
        # The rate of a count (orders) says nothing; that of GMV is the mean order value.
        rate = {"orders": _t(None), "gmv_usd": _t(None if m["rate"] is None else f"avg {m['rate']:,.0f}")}.get(
            m["metric"], _rate(m["rate"]))
        table.add_row(_t(m["label"]), _t(f"{m['window_days']} d"),
                      _t(f"{m['raw_numerator']:,.{2 if money else 0}f} / {m['raw_denominator']:,.0f}"),
                      _t(f"[{m['numerator']:,.{2 if money else 1}f} / {m['denominator']:,.1f}]", "dim"),
                      rate, _rate(m["target"]) if m["target"] is not None else _t(None),
                      _t(m["status"], STATUS_STYLE.get(m["status"] or "", "")))
    return table


def components(card: Scorecard) -> Table:
    table = Table(title=Text("Score components, weakest first (0-100 points; the score is their weighted mean)"))
    for name in ("component", "weight", "failures / trials", "shrunk rate", "bound", "points", "conservative"):
        table.add_column(name, justify="left" if name == "component" else "right")
    for c in _rows(card.components):
        table.add_row(_t(c["label"]), _t(f"{c['weight']:.2f}"), _t(f"{c['x']:.1f} / {c['n']:.1f}"),
                      _rate(c["rate"]), _rate(c["rate_upper"]), _t(f"{c['points']:.1f}"),
                      _t(f"{c['points_lower']:.1f}"))
    return table


def risk(card: Scorecard) -> Table:
    r = card.risk
    pct = "" if r["percentile"] is None else f", riskier than {r['percentile']:.0%} of suppliers"
    table = Table(title=Text(f"Risk {r['probability']:.1%}{pct}: {r['source']}"
                             if r["probability"] is not None else "Risk: not published"))
    table.add_column("what drives it", overflow="fold")
    table.add_column("effect")
    for d in r["drivers"]:
        table.add_row(_t(d["explanation"]), _t(d["effect"], {"raises": "red", "lowers": "green"}.get(d["effect"], "")))
    return table


def history(card: Scorecard, limit: int = 12) -> Table:
    rows = _rows(card.history)[-limit:]
    table = Table(title=Text(f"History: the last {len(rows)} published snapshot(s)"))
    for name in ("as of", "score", "lower", "tier", "protection", "limit USD", "risk", "rank"):
        table.add_column(name, justify="left" if name in ("as of", "tier", "protection") else "right",
                         min_width=10 if name == "as of" else None)
    for h in rows:
        table.add_row(_t(h["as_of_date"]), _t(f"{h['reliability_score']:.1f}"),
                      _t(f"{h['reliability_score_lower']:.1f}"), _t(h["tier"]),
                      _t(h["protection_status"], PROTECTION_STYLE.get(h["protection_status"], "")),
                      _t(f"{float(h['protection_limit_usd']):,.0f}"), _rate(h["risk_probability"]),
                      _t(h["rank_overall"]))
    return table


def scorecard_renderables(card: Scorecard) -> list:
    parts = [header(card), reasons(card)]
    if card.metrics is not None:
        parts.append(metrics(card))
    if card.components is not None:
        parts.append(components(card))
    parts += [risk(card), history(card)]
    parts += [Text(f"note: {n}", style="yellow") for n in card.notes]
    return parts
