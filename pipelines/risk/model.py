"""The risk model: a scikit-learn Pipeline, fitted on older orders and calibrated on newer ones.

`fit_model` sorts the training orders by time, fits the pipeline on the earlier
(1 - calibration_share) of them and calibrates its probabilities on the rest (a frozen
estimator inside CalibratedClassifierCV, or `StackedCalibration`), so the calibration is
learnt out of time, as the model will be used. Everything random takes the configured seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from pipelines.settings import RiskConfig

LABEL = "is_defect"
PROBABILITY_FLOOR = 1e-4


def build_pipeline(kind: str, risk: RiskConfig) -> Pipeline:
    """An unfitted pipeline: gradient-boosted trees (missing values handled natively), a
    logistic regression on median-imputed (with missing indicators), standardised features,
    or the average of both pipelines' probabilities (soft voting): the trees and the linear
    model err on different orders, and their average ranked the backtest's test orders
    better than either alone."""
    if kind == "boosting_and_logistic":
        return Pipeline([("classifier", VotingClassifier(
            [(k, build_pipeline(k, risk)) for k in ("hist_gradient_boosting", "logistic_regression")],
            voting="soft"))])
    if kind == "hist_gradient_boosting":
        g = risk.gradient_boosting
        return Pipeline([("classifier", HistGradientBoostingClassifier(
            learning_rate=g.learning_rate, max_iter=g.max_iter, max_leaf_nodes=g.max_leaf_nodes,
            min_samples_leaf=g.min_samples_leaf, l2_regularization=g.l2_regularization,
            early_stopping=g.early_stopping, n_iter_no_change=g.n_iter_no_change,
            validation_fraction=g.validation_fraction, random_state=risk.seed))])
    if kind == "logistic_regression":
        return Pipeline([
            ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("classifier", LogisticRegression(C=risk.logistic_c, max_iter=2000, random_state=risk.seed)),
        ])
    raise ValueError(f"unknown risk model '{kind}'")


def matrix(frame: pl.DataFrame, features: list[str]) -> pd.DataFrame:
    """The feature matrix, columns in the model's order, float64 with NaN for missing."""
    return frame.select([pl.col(f).cast(pl.Float64) for f in features]).to_pandas().fillna(np.nan)


def labels(frame: pl.DataFrame) -> np.ndarray:
    return frame[LABEL].cast(pl.Int8).to_numpy()


def sample(frame: pl.DataFrame, limit: int, seed: int) -> pl.DataFrame:
    """At most `limit` rows drawn uniformly (0: all), back in time order."""
    if limit == 0 or frame.height <= limit:
        return frame
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(frame.height, size=limit, replace=False))
    return frame[keep]


def time_split(frame: pl.DataFrame, calibration_share: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(earlier rows to fit on, latest rows to calibrate on); `frame` is in time order."""
    cut = int(round(frame.height * (1 - calibration_share)))
    return frame[:cut], frame[cut:]


def fit_pipeline(frame: pl.DataFrame, features: list[str], kind: str, risk: RiskConfig) -> Pipeline:
    """The pipeline fitted on frame. A feature with no value at all in frame (a short
    history) is fitted as a constant: it carries no information either way, and
    HistGradientBoostingClassifier cannot bin a column that is entirely missing."""
    _require_both_classes(frame, "fit")
    x = matrix(frame, features)
    empty = x.columns[x.isna().all()]
    x[empty] = 0.0
    return build_pipeline(kind, risk).fit(x, labels(frame))


def calibrate(fitted: Pipeline, frame: pl.DataFrame, features: list[str], method: str):
    """The fitted pipeline with its probabilities calibrated on `frame` (unchanged for 'none')."""
    if method == "none":
        return fitted
    _require_both_classes(frame, "calibrate")
    x, y = matrix(frame, features), labels(frame)
    if method == "stacked":
        return StackedCalibration(fitted).fit(x, y)
    return CalibratedClassifierCV(FrozenEstimator(fitted), method=method).fit(x, y)


class StackedCalibration(ClassifierMixin, BaseEstimator):
    """A fitted pipeline's members weighed and calibrated at once: a logistic regression on
    the log-odds each member gives (for boosting_and_logistic, the trees' and the linear
    model's; for one pipeline alone, Platt scaling), fitted on the calibration orders.
    The average gives each member half; here the latest orders decide how much each one
    knows, so a marketplace whose risk is additive on the log-odds leans on the linear
    model and one with interactions on the trees."""

    def __init__(self, fitted: Pipeline):
        self.fitted = fitted

    def _members(self) -> list:
        classifier = self.fitted.steps[-1][1]
        return list(classifier.estimators_) if isinstance(classifier, VotingClassifier) else [self.fitted]

    def _log_odds(self, x: pd.DataFrame) -> np.ndarray:
        p = np.column_stack([m.predict_proba(x)[:, 1] for m in self._members()])
        p = np.clip(p, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
        return np.log(p / (1 - p))

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> "StackedCalibration":
        self.blend_ = LogisticRegression().fit(self._log_odds(x), y)
        self.classes_ = self.blend_.classes_
        return self

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        return self.blend_.predict_proba(self._log_odds(x))


@dataclass
class FittedModel:
    """The estimator to predict with, and the rows it was fitted and calibrated on."""

    estimator: object
    fit_rows: int
    calibration_rows: int


def fit_model(frame: pl.DataFrame, features: list[str], risk: RiskConfig, kind: str | None = None,
              calibration: str | None = None) -> FittedModel:
    """Fit on the earlier training orders and calibrate on the latest ones (see the module doc)."""
    kind, calibration = kind or risk.model, calibration or risk.calibration
    share = risk.calibration_share if calibration != "none" else 0.0
    fit_part, calibration_part = time_split(frame, share)
    fitted = fit_pipeline(fit_part, features, kind, risk)
    return FittedModel(calibrate(fitted, calibration_part, features, calibration), fit_part.height,
                       calibration_part.height)


def predict(estimator, frame: pl.DataFrame, features: list[str]) -> np.ndarray:
    """P(order defect) for each row of frame, kept within [PROBABILITY_FLOOR, 1 - floor]:
    isotonic calibration returns exactly 0 where its lowest block saw no defect, a
    certainty that no finite evidence supports (and that log loss punishes without end)."""
    p = estimator.predict_proba(matrix(frame, features))[:, 1]
    return np.clip(p, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)


def _require_both_classes(frame: pl.DataFrame, step: str) -> None:
    if frame.height == 0 or frame[LABEL].n_unique() < 2:
        raise ValueError(f"cannot {step} the risk model on {frame.height} orders with a single outcome: "
                         f"widen risk.training_days or train at a later --as-of")
