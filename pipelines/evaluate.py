"""How good are the scores? Measured against a generated marketplace's ground truth.

Only this module reads `<data-dir>/truth/`; the pipeline never does. Besides the
product's own figures it scores two naive peers from the same warehouse metrics:

- `raw_rates` (how Odoo rates vendors): the same components from raw, unshrunk rates;
  a supplier without evidence gets a perfect 100.
- `fixed_scorecard` (how an ERPNext supplier scorecard works): fixed weights on raw
  on-time delivery, order-defect and late-shipment rates, no minimum evidence, starting
  at 100.

Each peer suspends a supplier whose score is under the product's eligibility bar.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from scipy.stats import spearmanr

from pipelines.settings import Config, DataPaths
from pipelines.warehouse import connect

EVIDENCE_BANDS = ((1, 4), (5, 19), (20, 99), (100, None))
ERPNEXT_WEIGHTS = {"on_time_delivery": 0.4, "order_defect": 0.4, "late_shipment": 0.2}


def evaluate(paths: DataPaths, config: Config, as_of: dt.date | None = None) -> dict:
    """The figures of issue 4's evaluation, for the product and both peers, as a dict."""
    rankings, metrics = _read_scores(paths, as_of)
    as_of = rankings["as_of_date"][0]
    truth = _truth_at(paths, as_of)
    frame = (rankings.join(truth, on="supplier_id", how="inner")
             .join(_peer_scores(metrics, config), on="supplier_id", how="left"))
    bar = config.protection.eligible_bar
    systems = {
        "product": ("reliability_score", pl.col("protection_status") == "suspended"),
        "raw_rates": ("raw_rates_score", pl.col("raw_rates_score") < bar),
        "fixed_scorecard": ("fixed_scorecard_score", pl.col("fixed_scorecard_score") < bar),
    }
    worst = pl.col("latent_reliability") <= pl.col("latent_reliability").quantile(0.1)
    good = pl.col("latent_reliability") >= pl.col("latent_reliability").median()
    frame = frame.with_columns(truly_worst=worst, truly_good=good)
    report = {"as_of_date": str(as_of), "suppliers": frame.height,
              "systems": {name: _system_figures(frame, score, suspended) for name, (score, suspended) in systems.items()},
              "fraud_rings": _fraud_figures(frame)}
    return report


def _read_scores(paths: DataPaths, as_of: dt.date | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    con = connect(paths, read_only=True)
    try:
        if as_of is None:
            as_of = con.execute("SELECT max(as_of_date) FROM scores.supplier_rankings").fetchall()[0][0]
        if as_of is None:
            raise ValueError("no scores in the warehouse: run `suprel score` first")
        rankings = pl.from_arrow(con.sql("SELECT * FROM scores.supplier_rankings WHERE as_of_date = ?",
                                         params=[as_of]).to_arrow_table())
        metrics = pl.from_arrow(con.sql(
            "SELECT * FROM scores.supplier_metrics WHERE as_of_date = ? AND window_days = (SELECT max(window_days) "
            "FROM scores.supplier_metrics)", params=[as_of]).to_arrow_table())
    finally:
        con.close()
    if rankings.is_empty():
        raise ValueError(f"no scores stored for {as_of}: run `suprel score --as-of {as_of}` first")
    return rankings, metrics


def _truth_at(paths: DataPaths, as_of: dt.date) -> pl.DataFrame:
    """Each supplier's latent reliability on the as-of date and whether it runs a fraud ring."""
    if not (paths.truth / "supplier_days.parquet").exists():
        raise FileNotFoundError(f"no ground truth in {paths.truth}: evaluate needs a generated marketplace")
    days = pl.read_parquet(paths.truth / "supplier_days.parquet").filter(pl.col("date") <= as_of)
    latent = days.sort("date").group_by("supplier_id").last().select("supplier_id", "latent_reliability")
    fraud = pl.read_parquet(paths.truth / "suppliers.parquet").select("supplier_id", "is_fraud_ring")
    return latent.join(fraud, on="supplier_id")


def _raw(metrics: pl.DataFrame, metric: str) -> pl.DataFrame:
    m = metrics.filter(pl.col("metric") == metric)
    return m.select("supplier_id", pl.col("rate").alias(metric), pl.col("raw_denominator").alias(f"{metric}_n"))


def _peer_scores(metrics: pl.DataFrame, config: Config) -> pl.DataFrame:
    """Both peers' scores per supplier, from raw rates; no evidence counts as perfect."""
    frame = _raw(metrics, "order_defect")
    for metric in ("on_time_delivery", "late_shipment"):
        frame = frame.join(_raw(metrics, metric), on="supplier_id", how="full", coalesce=True)
    failure = {"order_defect": pl.col("order_defect"), "late_shipment": pl.col("late_shipment"),
               "on_time_delivery": 1 - pl.col("on_time_delivery")}
    components = [(failure[c.metric].fill_null(0.0), c) for c in config.scoring.components]
    raw_rates = sum(c.weight * 100 * (-0.6931471805599453 * f / c.half_at).exp() for f, c in components) / sum(
        c.weight for _, c in components)
    fixed = sum(w * 100 * (1 - failure[m].fill_null(0.0)) for m, w in ERPNEXT_WEIGHTS.items())
    matured = pl.col("order_defect_n").fill_null(0.0)
    return frame.select("supplier_id", raw_rates.alias("raw_rates_score"), fixed.alias("fixed_scorecard_score"),
                        matured.alias("matured_orders_raw"))


def _spearman(frame: pl.DataFrame, score: str) -> float | None:
    if frame.height < 3:
        return None
    value = spearmanr(frame[score].fill_null(100.0), frame["latent_reliability"]).statistic
    return None if value != value else round(float(value), 4)


def _system_figures(frame: pl.DataFrame, score: str, suspended: pl.Expr) -> dict:
    frame = frame.with_columns(suspended=suspended.fill_null(False))
    bands = {}
    for low, high in EVIDENCE_BANDS:
        in_band = pl.col("matured_orders_raw").fill_null(0) >= low
        if high is not None:
            in_band &= pl.col("matured_orders_raw").fill_null(0) <= high
        band = frame.filter(in_band)
        bands[f"{low}-{high}" if high else f"{low}+"] = {"suppliers": band.height, "spearman": _spearman(band, score)}
    twenty_plus = frame.filter(pl.col("matured_orders_raw").fill_null(0) >= 20)
    hits = frame.filter(pl.col("suspended") & pl.col("truly_worst")).height
    suspended_n, worst_n = frame["suspended"].sum(), frame["truly_worst"].sum()
    good_n = frame["truly_good"].sum()
    return {
        "spearman_all": _spearman(frame, score),
        "spearman_20_plus": _spearman(twenty_plus, score),
        "spearman_by_band": bands,
        "suspended": int(suspended_n),
        "precision_suspended_vs_worst_decile": round(hits / suspended_n, 4) if suspended_n else None,
        "recall_suspended_vs_worst_decile": round(hits / worst_n, 4) if worst_n else None,
        "good_suppliers_suspended_share": round(
            frame.filter(pl.col("truly_good") & pl.col("suspended")).height / good_n, 4) if good_n else None,
    }


def _fraud_figures(frame: pl.DataFrame) -> dict:
    rings = frame.filter(pl.col("is_fraud_ring"))
    by_status = dict(rings.group_by("protection_status").len().iter_rows())
    not_eligible = rings.filter(pl.col("protection_status") != "eligible").height
    return {"suppliers": rings.height, "by_status": by_status,
            "not_eligible_share": round(not_eligible / rings.height, 4) if rings.height else None}
