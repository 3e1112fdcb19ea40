"""Each supplier's risk as of a date, from the registry's current model, and its drift.

Grain of `SupplierRisk.table`: one row per supplier known at the as-of date, with
`risk_probability`: the predicted probability that an order typical of it (see
models/risk_features.typical_orders), placed the next day, becomes an order defect.

Drift compares the orders placed in the `drift_days` up to the as-of date (features as
of their own placement, as in training) with those of the `drift_days` up to the
training date: the PSI of each feature and of the predictions, stored in the model's
folder under drift/. Scored on its training date, a model shows no drift. The calendar
features (month, weekday) are stored but never call for retraining: they move by nature.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from models.risk_features import CALENDAR_FEATURES
from pipelines.risk import evaluation, latent_state, model, registry
from pipelines.risk.dataset import RiskData, feature_names, refresh_facts, refresh_feature_store
from pipelines.settings import Config, DataPaths
from pipelines.warehouse import connect, transaction

log = logging.getLogger(__name__)


@dataclass
class SupplierRisk:
    model_version: str
    as_of: dt.date
    table: pa.Table           # supplier_id, risk_probability
    drift: dict | None


def supplier_risk(paths: DataPaths, config: Config, as_of: dt.date) -> SupplierRisk | None:
    """The current model's per-supplier risk as of `as_of`; None when no model is registered.

    Raises `registry.RiskModelMismatch` when the model was trained on another feature schema.
    """
    if registry.current_version(paths) is None:
        return None
    current = registry.load(paths)
    trained_as_of = dt.date.fromisoformat(current.metadata["training"]["as_of"])
    if trained_as_of > as_of:
        log.warning("risk model %s learnt from outcomes up to %s, after the scoring date %s: its risk for that "
                    "date is not what a run on that date could have known", current.version, trained_as_of, as_of)
    names = feature_names(config)
    refresh_facts(paths, config, as_of)
    refresh_feature_store(paths, config, as_of)
    risk = config.risk
    streams = registry.latent_streams(current)
    with RiskData(paths, config) as data:
        typical, recent = data.scoring_features(as_of, risk.typical_order_days, risk.drift_days)
        # one pass of the latent rates' filters serves both frames, resumed from the last run's
        both, kept = data.with_latent_resumed(pl.concat([typical, recent]), streams,
                                              latent_state.keep_days(as_of - dt.timedelta(days=risk.drift_days - 1)))
        typical, recent = both.head(typical.height), both.tail(recent.height)
        registry.check_schema(current, registry.feature_schema(typical, names))
    if kept.made:
        _keep_filters(paths, config, streams, kept)
    probabilities = model.predict(current.estimator, typical, names) if typical.height else []
    table = pa.table({"supplier_id": typical["supplier_id"].to_arrow().cast(pa.string()),
                      "risk_probability": pa.array(probabilities, type=pa.float64())})
    drift = drift_report(current, recent, names, as_of, risk.drift_psi_threshold) if recent.height else None
    if drift is not None:
        registry.save_drift(current, str(as_of), drift)
    return SupplierRisk(current.version, as_of, table, drift)


def _keep_filters(paths: DataPaths, config: Config, streams, kept: latent_state.Keeping) -> None:
    """The latent rates' filters for the next run to resume from (pipelines/risk/latent_state.py)."""
    con = connect(paths, memory_limit=config.warehouse.memory_limit)
    try:
        with transaction(con):
            latent_state.save(con, kept, latent_state.streams_key(streams))
    finally:
        con.close()


def drift_report(current: registry.RegisteredModel, recent, names: list[str], as_of: dt.date,
                 threshold: float) -> dict:
    """PSI of each feature and of the predictions, recent orders against training orders."""
    reference = current.metadata["reference"]
    features = {n: evaluation.psi(reference["features"][n], recent[n].to_numpy()) for n in names}
    prediction = evaluation.psi(reference["prediction"], model.predict(current.estimator, recent, names))
    drifted = sorted((n for n, v in features.items() if v > threshold and n not in CALENDAR_FEATURES),
                     key=lambda n: -features[n])
    return {
        "as_of_date": str(as_of), "model_version": current.version, "orders": recent.height,
        "threshold": threshold, "prediction_psi": prediction, "feature_psi": features,
        "drifted_features": drifted,
        "should_retrain": prediction > threshold or bool(drifted),
    }


def score_with_risk(paths: DataPaths, config: Config, as_of: dt.date, run_id: str):
    """`pipelines.scoring.score` with the current model's risk and version, when a model is
    registered (otherwise as before: the shrunk order-defect rate, model_version 'none').
    Returns (ScoreResult, SupplierRisk | None)."""
    import ibis

    from pipelines.scoring import score

    predicted = supplier_risk(paths, config, as_of)
    if predicted is None:
        return score(paths, config, as_of, run_id), None
    if predicted.drift and predicted.drift["should_retrain"]:
        log.warning("risk model %s: drift above PSI %s (prediction %.3f; largest in %s): retrain it with "
                    "`suprel train`", predicted.model_version, predicted.drift["threshold"],
                    predicted.drift["prediction_psi"], ", ".join(predicted.drift["drifted_features"][:8]) or "none")
    result = score(paths, config, as_of, run_id, risk=ibis.memtable(predicted.table),
                   model_version=predicted.model_version)
    return result, predicted
