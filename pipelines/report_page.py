"""The run report's HTML: sections, tables and inline SVG charts (pipelines/analyst/charts.py).

Self-contained and inert: no script, no external file or font, and a Content-Security-
Policy that would block any that slipped in. Supplier names, categories, paths, messages
and every other upstream string are escaped where they are written (`_cell`); only the
page's own markup and the charts (which escape their own labels) are raw.
"""

from __future__ import annotations

import html

import polars as pl

from pipelines.analyst import charts
from pipelines.analyst.reasons import explain

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1180px;
color:#222;padding:0 1rem}h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1.2rem}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#17733a;font-weight:600}.bad{color:#b00020;font-weight:600}.muted{color:#666}
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid svg{border:1px solid #eee}"""


class Raw(str):
    """Markup made here (badges, charts): written as is."""


def _cell(value) -> str:
    if isinstance(value, Raw):
        return f"<td>{value}</td>"
    if isinstance(value, bool) or value is None:
        return f"<td>{'yes' if value is True else 'no' if value is False else '–'}</td>"
    if isinstance(value, float):
        return f'<td class="n">{value:,.4g}</td>' if abs(value) < 1000 else f'<td class="n">{value:,.0f}</td>'
    if isinstance(value, int):
        return f'<td class="n">{value:,}</td>'
    if isinstance(value, (list, tuple)):
        value = ", ".join(map(str, value))
    return f"<td>{html.escape(str(value))}</td>"


def table(header: list[str] | None, rows: list[list]) -> str:
    """A table of escaped cells; without a header, a two-column list of facts."""
    if not rows:
        return "<p class='muted'>None.</p>"
    head = "" if header is None else "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>"
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _badge(ok: bool, yes: str, no: str) -> Raw:
    return Raw(f'<span class="ok">{html.escape(yes)}</span>' if ok else f'<span class="bad">{html.escape(no)}</span>')


def _esc(value) -> str:
    return html.escape("–" if value is None else str(value))


def run_section(f: dict) -> str:
    run, current = f["last_run"], f["current"]
    rows = [["data directory", f["data_dir"]], ["report generated", f"{f['generated_at']:%Y-%m-%d %H:%M:%S} UTC"]]
    if run:
        ok = run["status"] in ("published", "ingested", "scored")
        rows += [["last run", run["run_id"]], ["flow", run["flow"]], ["as of", run["as_of_date"]],
                 ["status", _badge(ok, run["status"], run["status"])], ["message", run["message"]],
                 ["started / finished (UTC)", f"{run['started_at']} / {run['finished_at']}"],
                 ["forced past the gate because", run.get("forced_reason")]]
    else:
        rows.append(["last run", "no run recorded in meta.runs (scored outside a flow?)"])
    rows += [["current publication", current["as_of_date"][0]], ["suppliers", current.height],
             ["published snapshots", len(f["history_dates"])],
             ["config hash", ", ".join(current["config_hash"].unique().sort().to_list())],
             ["risk model", ", ".join(current["model_version"].unique().sort().to_list())]]
    return "<h2>Last run</h2>" + table(None, rows)


def quality_section(f: dict) -> str:
    q = f["quality"]
    if not q or not q.get("run"):
        return "<h2>Data quality</h2><p class='muted'>No validated ingest run yet.</p>"
    run, checks = q["run"], q["checks"]
    verdict = _badge(run["passed"], "PASSED", "FAILED")
    head = table(["validation run", "batch clock", "new files", "verdict", "checks passed", "warned", "failed"],
                 [[run["run_id"], run["batch_clock"], run["files_new"], verdict, checks["passed"], checks["warned"],
                   checks["failed"]]])
    brief = ["source", "file", "expectation", "observed"]
    problems = [[p["source"], p["file_path"], p["expectation"], p["observed_value"]]
                for p in q["critical"] + q["warnings"]]
    return ("<h2>Data quality</h2>" + head + "<h3>Critical failures and warnings</h3>" + table(brief, problems)
            + "<h3>Rows quarantined by this run</h3>"
            + table(["source", "reason", "rows"], [[r["source"], r["reason"], r["rows"]] for r in q["quarantined_this_run"]])
            + "<h3>Rows pending a reference</h3>"
            + table(["source", "rows", "oldest first seen"], [[p["source"], p["rows"], p["oldest_first_seen_at"]]
                                                              for p in q["pending"]])
            + "<h3>Freshness</h3>" + table(["source", "fresh", "observed"], [
                [s["source"], _badge(s["success"], "yes", "no"), s["observed_value"]] for s in q["sources"]]))


def ingestion_section(f: dict) -> str:
    rows = f["ingestion"]
    keys = ["files_loaded", "files_rejected", "files_skipped", "files_duplicate", "rows_in", "rows_loaded",
            "rows_quarantined", "rows_pending"]
    chart = charts.bars([r["source"] for r in rows], [r["rows_loaded"] for r in rows], "Rows loaded per source",
                        "rows") if rows else ""
    quarantined = charts.bars([r["source"] for r in rows], [r["rows_quarantined"] for r in rows],
                              "Rows quarantined per source", "rows", colors=[charts.PALETTE[1]]) if rows else ""
    return (f"<h2>Ingestion</h2><p class='muted'>{_esc(f['ingestion_scope'])}; rows in = loaded + quarantined + "
            f"pending.</p>" + table(["source", *[k.replace("_", " ") for k in keys]],
                                    [[r["source"], *[r[k] for k in keys]] for r in rows])
            + f"<div class='grid'>{chart}{quarantined}</div>")


def distribution_section(f: dict) -> str:
    current = f["current"]
    tiers = current.group_by("tier").len().sort("len", descending=True)
    status = current.group_by("protection_status").len().sort("len", descending=True)
    parts = [charts.histogram(current["reliability_score"], "Reliability score", "score (0-100)"),
             charts.histogram(current["reliability_score_lower"], "Conservative score (lower bound)", "score"),
             charts.histogram(current["risk_probability"], "Risk: P(next order fails)", "probability",
                              color=charts.PALETTE[1]),
             charts.scatter(current["reliability_score"], current["risk_probability"], "Risk against score",
                            "reliability score", "risk probability", names=current["supplier_name"].to_list()),
             charts.bars(tiers["tier"].to_list(), tiers["len"].to_list(), "Suppliers per tier", "suppliers"),
             charts.bars(status["protection_status"].to_list(), status["len"].to_list(), "Suppliers per protection "
                         "status", "suppliers", colors=[charts.PALETTE[2]])]
    protected = current.filter(pl.col("is_protected"))
    summary = (f"<p>{protected.height} of {current.height} suppliers protected, covering "
               f"{float(protected['gmv_usd_365d'].cast(pl.Float64).sum()):,.0f} USD of 365-day GMV; total protection "
               f"limit {float(current['protection_limit_usd'].cast(pl.Float64).sum()):,.0f} USD.</p>")
    return "<h2>Scores, risk and tiers</h2>" + summary + f"<div class='grid'>{''.join(parts)}</div>"


def _reasons_in_words(f: dict, row: dict) -> str:
    decisions = f["decisions"]
    extra = {}
    if decisions is not None:
        found = decisions.filter(pl.col("supplier_id") == row["supplier_id"])
        extra = found.row(0, named=True) if found.height else {}
    facts = {**row, **extra, "distinct_buyers": row["distinct_buyers_365d"]}
    policy = f["policy"]
    components = {c.name: c for c in policy.components}
    return " ".join(explain(code, facts, policy.protection, components, policy.tier_bars["good"])
                    for code in row["reason_codes"] or [])


def changes_section(f: dict) -> str:
    changes, previous = f["changes"], f["previous"]
    if previous is None:
        return "<h2>Eligibility changes</h2><p class='muted'>First publication: nothing to compare with.</p>"
    gained = int(changes["is_protected"].sum()) if changes.height else 0
    rows = [[r["supplier_name"], r["supplier_id"], "gained" if r["is_protected"] else "lost",
             f"{r['previous_status']} → {r['protection_status']}", r["reason_codes"], _reasons_in_words(f, r)]
            for r in changes.iter_rows(named=True)]
    return (f"<h2>Eligibility changes</h2><p>Against the publication of {_esc(previous['as_of_date'][0])}: "
            f"{gained} gained protection, {changes.height - gained} lost it.</p>"
            + table(["supplier", "id", "protection", "status", "reason codes", "why"], rows))


def movers_section(f: dict) -> str:
    movers = f["movers"]
    if f["previous"] is None or movers.height == 0:
        return "<h2>Top movers</h2><p class='muted'>No score moved against the previous publication.</p>"
    labels = [f"{r['supplier_name']} ({r['supplier_id']})" for r in movers.iter_rows(named=True)]
    chart = charts.bars(labels, movers["score_change"].to_list(), "Score change since the previous publication",
                        "points", value_format="{:+.1f}")
    rows = [[r["supplier_name"], r["supplier_id"], r["previous_score"], r["reliability_score"], r["score_change"],
             r["rank_overall"], r["rank_change"], f"{r['previous_status']} → {r['protection_status']}"]
            for r in movers.iter_rows(named=True)]
    return ("<h2>Top movers</h2>" + chart + table(["supplier", "id", "score before", "score now", "change", "rank",
                                                  "rank change", "status"], rows))


def model_section(f: dict) -> str:
    model, bins = f["model"], f["calibration"]
    if model is None:
        return ("<h2>Risk model</h2><p class='muted'>No risk model registered: risk_probability is each supplier's "
                "shrunk 365-day order-defect rate. <code>suprel train</code> registers one.</p>")
    t = model.get("training", {})
    head = table(None, [["model version", model["version"]], ["estimator", model.get("estimator")],
                            ["trained as of", t.get("as_of")], ["training orders", t.get("orders")]])
    chart = charts.calibration(bins, "Calibration by decile (backtest, pooled test orders)") if bins else Raw(
        "<p class='muted'>No backtest figures for this model: no calibration chart (<code>suprel backtest</code>).</p>")
    drift = model.get("drift")
    note = (f"<p>Drift on {_esc(drift.get('as_of_date'))}: prediction PSI {drift.get('prediction_psi', 0):.3f}; "
            f"{'retraining advised' if drift.get('should_retrain') else 'no retraining needed'}.</p>") if drift else ""
    return "<h2>Risk model</h2>" + head + chart + note


def render(f: dict) -> str:
    as_of = f["current"]["as_of_date"][0]
    body = "".join(section(f) for section in (run_section, quality_section, ingestion_section, distribution_section,
                                              changes_section, movers_section, model_section))
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            f"<title>Supplier Reliability run report, {_esc(as_of)}</title><style>{STYLE}</style></head>"
            f"<body><h1>Supplier Reliability: run report</h1><p class='muted'>Publication as of {_esc(as_of)}</p>"
            f"{body}</body></html>")
