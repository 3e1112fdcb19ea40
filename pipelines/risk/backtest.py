"""Rolling-origin backtest of the risk model against baselines and, on generated data, the truth.

Each fold has a cut-off c: it trains on what a run on day c would have had (orders placed
in the training window, which ends `maturity_days` before c, labelled from the record
versions known at c) and tests on the orders placed in the `test_days` after c, labelled
at the evaluation date (they matured by then: the last test period ends `maturity_days`
before it). Features are point-in-time, so one feature frame serves every fold; only the
latent rates are computed per fold, by the filters fitted at its cut-off (parameters of
the model, models/latent_rate.py). Training and test orders of a fold are disjoint in
time, and that is checked, not assumed.

Systems compared on the same test orders: both pipelines (gradient boosting, logistic
regression) under each calibration; the baselines (the training orders' defect rate; the
supplier's raw and shrunk 365-day order-defect rates as of the order's day, the global
rate where it has no evidence); and the ceiling, the generator's true probabilities.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from pipelines.risk import evaluation, model
from pipelines.risk.dataset import RiskData, feature_names, refresh_facts, truth_probabilities
from pipelines.settings import RISK_CALIBRATIONS, RISK_MODELS, Config, DataPaths, RiskConfig

log = logging.getLogger(__name__)
BASELINES = {"supplier_raw_rate": "rate_order_defect_{long}", "supplier_shrunk_rate": "shrunk_order_defect_{long}"}
CEILING = "truth"


@dataclass(frozen=True)
class Fold:
    number: int
    train_first: dt.date
    train_last: dt.date
    cutoff: dt.date
    test_first: dt.date
    test_last: dt.date


@dataclass
class FoldResult:
    fold: Fold
    train_order_ids: pl.Series
    test_order_ids: pl.Series
    test_placed: int
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    labels: np.ndarray | None = None
    train_defect_rate: float = 0.0


def training_window(cutoff: dt.date, risk: RiskConfig) -> tuple[dt.date, dt.date]:
    """(first, last) placement day of the orders a model trained at `cutoff` learns from."""
    last = cutoff - dt.timedelta(days=risk.maturity_days)
    return last - dt.timedelta(days=risk.training_days - 1), last


def plan_folds(evaluation_day: dt.date, risk: RiskConfig, folds: int | None = None) -> list[Fold]:
    """Consecutive test periods, oldest first, the last ending maturity_days before evaluation_day."""
    folds = folds or risk.backtest.folds
    end = evaluation_day - dt.timedelta(days=risk.maturity_days)
    plan = []
    for number in range(folds):
        test_last = end - dt.timedelta(days=(folds - 1 - number) * risk.backtest.test_days)
        test_first = test_last - dt.timedelta(days=risk.backtest.test_days - 1)
        cutoff = test_first - dt.timedelta(days=1)
        plan.append(Fold(number + 1, *training_window(cutoff, risk), cutoff, test_first, test_last))
    return plan


def variant_names() -> list[str]:
    return [f"{kind}/{calibration}" for kind in RISK_MODELS for calibration in RISK_CALIBRATIONS]


def run_backtest(paths: DataPaths, config: Config, evaluation_day: dt.date, folds: int | None = None,
                 progress=None) -> dict:
    """The backtest's figures as a dict (see `summarise`), facts refreshed to evaluation_day."""
    refresh_facts(paths, config, evaluation_day)
    plan = plan_folds(evaluation_day, config.risk, folds)
    with RiskData(paths, config) as data:
        features = data.order_features(plan[0].train_first, plan[-1].test_last)
        results = backtest(data, features, config, evaluation_day, plan, truth_probabilities(paths), progress)
    return summarise(results, config, evaluation_day)


def backtest(data: RiskData, features: pl.DataFrame, config: Config, evaluation_day: dt.date, plan: list[Fold],
             truth: pl.DataFrame | None, progress=None, only_configured: bool = False) -> list[FoldResult]:
    """Train and test every fold of `plan` on `features` (`RiskData.order_features`, which
    must cover every window; the latent rates are added per fold): every pipeline under
    every calibration, or only the configured one (what training records of the model it
    registers), always with the baselines and the ceiling."""
    report = progress or (lambda stage, done, total: None)
    tested = data.labels(evaluation_day, plan[0].test_first, plan[-1].test_last)
    results = []
    for done, fold in enumerate(plan):
        report("backtest", done, len(plan))
        latent = data.fit_latent(fold.cutoff)
        log.info("fold %s: latent rates fitted at %s (log-odds prior mean, sd; drift, return a day): %s",
                 fold.number, fold.cutoff, "; ".join(
                     f"{s} {f.mean:.3f}, {f.sd:.3f}; {f.drift_sd_per_day}, {f.return_per_day}"
                     for s, f in latent.items() if f))
        in_fold = data.with_latent(features.filter(pl.col("placed_on").is_between(fold.train_first, fold.test_last)),
                                   latent)
        train = _labelled(in_fold, data.labels(fold.cutoff, fold.train_first, fold.train_last),
                          fold.train_first, fold.train_last)
        test = _labelled(in_fold, tested, fold.test_first, fold.test_last)
        placed = in_fold.filter(pl.col("placed_on").is_between(fold.test_first, fold.test_last)).height
        results.append(_run_fold(fold, train, test, placed, config, truth, only_configured))
    report("backtest", len(plan), len(plan))
    return results


def _labelled(features: pl.DataFrame, labels: pl.DataFrame, first: dt.date, last: dt.date) -> pl.DataFrame:
    window = features.filter(pl.col("placed_on").is_between(first, last))
    return window.join(labels, on="order_id", how="inner").sort("placed_on", "order_id")


def _run_fold(fold: Fold, train: pl.DataFrame, test: pl.DataFrame, placed: int, config: Config,
              truth: pl.DataFrame | None, only_configured: bool = False) -> FoldResult:
    _check_disjoint(fold, train, test)
    for name, part, first, last in (("training", train, fold.train_first, fold.train_last),
                                    ("test", test, fold.test_first, fold.test_last)):
        if part.height == 0:
            raise ValueError(f"backtest fold {fold.number} has no matured {name} orders placed {first}..{last}: "
                             f"the data is too short for these settings; use fewer --folds, or shorter "
                             f"risk.training_days / risk.backtest.test_days")
    risk, names = config.risk, feature_names(config)
    train = model.sample(train, risk.max_training_orders, risk.seed)
    result = FoldResult(fold, train["order_id"], test["order_id"], placed, labels=model.labels(test),
                        train_defect_rate=float(train[model.LABEL].mean()))
    log.info("fold %s: %s training orders to %s, %s test orders", fold.number, train.height, fold.cutoff, test.height)
    fit_part, calibration_part = model.time_split(train, risk.calibration_share)
    kinds, calibrations = ((risk.model,), (risk.calibration,)) if only_configured else (RISK_MODELS,
                                                                                          RISK_CALIBRATIONS)
    for kind in kinds:
        fitted = model.fit_pipeline(fit_part, names, kind, risk)
        for calibration in calibrations:
            estimator = model.calibrate(fitted, calibration_part, names, calibration)
            result.predictions[f"{kind}/{calibration}"] = model.predict(estimator, test, names)
    result.predictions.update(_baselines(test, result.train_defect_rate, config))
    if truth is not None:
        with_truth = test.select("order_id").join(truth, on="order_id", how="left")
        if with_truth["true_defect_probability"].null_count() == 0:
            result.predictions[CEILING] = with_truth["true_defect_probability"].to_numpy()
    return result


def _check_disjoint(fold: Fold, train: pl.DataFrame, test: pl.DataFrame) -> None:
    """Training orders are placed, and labelled, before any test order is placed."""
    shared = train.join(test, on="order_id", how="semi").height
    if shared or (train.height and test.height and train["placed_on"].max() >= test["placed_on"].min()):
        raise AssertionError(f"fold {fold.number}: training and test orders overlap ({shared} shared)")
    if fold.cutoff >= fold.test_first:
        raise AssertionError(f"fold {fold.number}: labels known at {fold.cutoff}, after the test period starts")


def _baselines(test: pl.DataFrame, global_rate: float, config: Config) -> dict[str, np.ndarray]:
    out = {"global_rate": np.full(test.height, global_rate)}
    for name, column in BASELINES.items():
        column = column.format(long=config.scoring.long_window_days)
        out[name] = test[column].fill_null(global_rate).fill_nan(global_rate).to_numpy()
    return out


def summarise(results: list[FoldResult], config: Config, evaluation_day: dt.date) -> dict:
    """Per fold and pooled over the folds: each system's figures; the configured model's
    name; and the targets (share of the truth's AUC lift, ECE, beats every baseline)."""
    chosen = f"{config.risk.model}/{config.risk.calibration}"
    systems = list(results[0].predictions)
    folds = [{**{k: str(v) if isinstance(v, dt.date) else v for k, v in asdict(r.fold).items()},
              "train_orders": len(r.train_order_ids), "train_defect_rate": r.train_defect_rate,
              "test_orders_placed": r.test_placed, "test_orders_matured": len(r.test_order_ids),
              "systems": {s: _without_table(evaluation.figures(r.labels, r.predictions[s])) for s in systems}}
             for r in results]
    y = np.concatenate([r.labels for r in results])
    pooled = {s: evaluation.figures(y, np.concatenate([r.predictions[s] for r in results]))
              for s in systems if all(s in r.predictions for r in results)}
    return {"evaluation_date": str(evaluation_day), "model": chosen, "folds": folds, "pooled": pooled,
            "targets": targets(pooled, chosen), "settings": config.risk.as_json()}


def _without_table(figures: dict) -> dict:
    return {k: v for k, v in figures.items() if k != "calibration"}


def targets(pooled: dict, chosen: str) -> dict:
    """The issue's targets for the chosen system, on the pooled test orders."""
    mine = pooled[chosen]
    baselines = [b for b in ("global_rate", *BASELINES) if b in pooled]
    ceiling = pooled.get(CEILING)
    share = evaluation.auc_lift_share(mine["auc"], ceiling["auc"] if ceiling else None)
    beats = {b: (mine["auc"] or 0) > (pooled[b]["auc"] or 0.5) and mine["brier"] < pooled[b]["brier"]
             for b in baselines}
    return {
        "auc_lift_share_of_truth": share, "auc_lift_share_met": None if share is None else share >= 0.9,
        "ece": mine["ece"], "ece_met": mine["ece"] < 0.01,
        "beats_baselines": beats, "beats_every_baseline": all(beats.values()),
    }
