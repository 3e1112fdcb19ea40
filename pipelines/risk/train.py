"""Train the risk model on everything matured by a date, backtest the same settings, register.

The training orders are those placed in `training_window(as_of)` whose outcome had
matured by as_of, labelled from the record versions known at as_of: exactly what a run on
that day has. The version name is the training date and a hash of the training rows
and settings, so retraining on the same data with the same settings gives the same
version (and replaces it with an identical model).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging

import polars as pl

from pipelines.risk import evaluation, model, registry
from pipelines.risk.backtest import backtest, plan_folds, summarise, training_window
from pipelines.risk.dataset import RiskData, feature_names, refresh_facts, truth_probabilities
from pipelines.risk.report import training_page
from pipelines.settings import Config, DataPaths

log = logging.getLogger(__name__)


def train(paths: DataPaths, config: Config, as_of: dt.date, run_backtest: bool = True,
          progress=None) -> dict:
    """Train, optionally backtest, register as current; returns the model's metadata."""
    risk, names = config.risk, feature_names(config)
    refresh_facts(paths, config, as_of)
    first, last = training_window(as_of, risk)
    plan = plan_folds(as_of, risk) if run_backtest else []
    with RiskData(paths, config) as data:
        features = data.order_features(min([first, *(f.train_first for f in plan)]), as_of)
        latent = data.fit_latent(as_of)
        since_first = data.with_latent(features.filter(pl.col("placed_on") >= first), latent)
        recent = since_first.filter(pl.col("placed_on") > as_of - dt.timedelta(days=risk.drift_days))
        frame = since_first.filter(pl.col("placed_on").is_between(first, last)).join(
            data.labels(as_of, first, last), on="order_id", how="inner").sort("placed_on", "order_id")
        figures = None
        if plan:
            # the configured pipeline only: `suprel backtest` compares the alternatives
            results = backtest(data, features, config, as_of, plan, truth_probabilities(paths), progress,
                               only_configured=True)
            figures = summarise(results, config, as_of)
    if frame.height == 0:
        raise ValueError(f"no order placed {first}..{last} had matured by {as_of}: nothing to train on; "
                         f"train at a later --as-of or widen risk.training_days")
    frame = model.sample(frame, risk.max_training_orders, risk.seed)
    fitted = model.fit_model(frame, names, risk)
    metadata = _metadata(frame, recent, names, fitted, config, as_of, first, last, figures)
    metadata["latent_rates"] = registry.latent_to_json(latent)
    version = metadata["model_version"]
    if figures is None:  # same version = same rows and settings: an earlier backtest of it still holds
        metadata["backtest"] = figures = _earlier_backtest(paths, version)
    registry.register(paths, version, fitted.estimator, metadata, training_page(metadata, figures))
    log.info("registered risk model %s (%s orders)", version, frame.height)
    return metadata


def _earlier_backtest(paths: DataPaths, version: str) -> dict | None:
    try:
        return registry.load(paths, version).metadata.get("backtest")
    except FileNotFoundError:
        return None


def _metadata(frame: pl.DataFrame, recent: pl.DataFrame, names: list[str], fitted: model.FittedModel,
              config: Config, as_of: dt.date, first: dt.date, last: dt.date, figures: dict | None) -> dict:
    risk = config.risk
    fingerprint = registry.fingerprint(frame, ["order_id", *names, model.LABEL])
    settings = json.dumps(dataclasses.asdict(risk), sort_keys=True)
    digest = hashlib.sha256(f"{fingerprint}|{settings}|{config.config_hash}".encode()).hexdigest()[:10]
    # Drift compares like with like: the orders of the `drift_days` up to the training date
    # (what a scoring run on that day compares), against those of the days up to a later
    # scoring date. The labelled training orders end `maturity_days` earlier: against them,
    # everything that grows with time (tenure, volumes to date) and the season would drift
    # on the very day of training. No recent order: the latest training orders stand in.
    latest = recent if recent.height else model.time_split(frame, risk.calibration_share)[1]
    predictions = model.predict(fitted.estimator, latest, names)
    return {
        "model_version": f"risk-{as_of:%Y%m%d}-{digest}",
        "estimator": f"{risk.model} + {risk.calibration} calibration",
        "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "training": {"as_of": str(as_of), "first_placed_on": str(first), "last_placed_on": str(last),
                     "orders": frame.height, "defect_rate": float(frame[model.LABEL].mean()),
                     "fit_orders": fitted.fit_rows, "calibration_orders": fitted.calibration_rows},
        "features": registry.feature_schema(frame, names),
        "data_fingerprint": fingerprint,
        "config_hash": config.config_hash,
        "settings": risk.as_json(),
        "libraries": registry.library_versions(),
        "backtest": figures,
        "reference": {"orders": latest.height, "first_placed_on": str(latest["placed_on"].min()),
                      "features": {n: evaluation.reference_bins(latest[n].to_numpy(), risk.psi_bins) for n in names},
                      "prediction": evaluation.reference_bins(predictions, risk.psi_bins)},
    }
