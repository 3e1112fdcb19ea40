"""Figures of probabilistic predictions: AUC, Brier score, log loss, calibration, PSI.

Calibration is measured over deciles of the predictions (equal-count bins of the
predictions sorted, ties broken by position, so a constant predictor still has ten bins):
per bin the mean prediction and the observed rate; the expected calibration error (ECE)
is their absolute gap weighted by the bin's share of orders.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

EPSILON = 1e-6
PSI_FLOOR = 1e-4  # share given to an empty bin, so that PSI stays finite


def deciles(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    """Per equal-count bin of the predictions, lowest first: orders, mean prediction, observed rate."""
    order = np.argsort(p, kind="stable")
    return [{"orders": int(len(part)), "mean_predicted": float(p[part].mean()), "observed_rate": float(y[part].mean())}
            for part in np.array_split(order, bins) if len(part)]


def expected_calibration_error(bins: list[dict]) -> float:
    total = sum(b["orders"] for b in bins)
    return sum(b["orders"] / total * abs(b["mean_predicted"] - b["observed_rate"]) for b in bins)


def figures(y: np.ndarray, p: np.ndarray) -> dict:
    """AUC, Brier, log loss, ECE and the calibration table of predictions p of labels y."""
    y = np.asarray(y, dtype=np.int8)
    p = np.clip(np.asarray(p, dtype=np.float64), EPSILON, 1 - EPSILON)
    bins = deciles(y, p)
    both = len(np.unique(y)) == 2
    return {
        "orders": int(len(y)), "defect_rate": float(y.mean()) if len(y) else None,
        "mean_predicted": float(p.mean()) if len(p) else None,
        "auc": float(roc_auc_score(y, p)) if both else None,
        "brier": float(brier_score_loss(y, p)) if len(y) else None,
        "log_loss": float(log_loss(y, p, labels=[0, 1])) if len(y) else None,
        "ece": expected_calibration_error(bins) if bins else None,
        "calibration": bins,
    }


def auc_lift_share(auc: float | None, ceiling_auc: float | None) -> float | None:
    """(AUC - 0.5) / (AUC_ceiling - 0.5): the share of the attainable lift over chance."""
    if auc is None or ceiling_auc is None or ceiling_auc <= 0.5:
        return None
    return (auc - 0.5) / (ceiling_auc - 0.5)


def reference_bins(values: np.ndarray, bins: int) -> dict:
    """A reference distribution for PSI: quantile edges of the non-missing values and the
    share of values per bin, the last share being the missing values'."""
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])) if len(present) else np.array([])
    return {"edges": [float(e) for e in edges], "shares": _shares(values, edges)}


def _shares(values: np.ndarray, edges: np.ndarray) -> list[float]:
    present = ~np.isnan(values)
    counts = np.bincount(np.searchsorted(edges, values[present], side="right"), minlength=len(edges) + 1)
    counts = np.append(counts, (~present).sum())
    return [float(c) / max(len(values), 1) for c in counts]


def psi(reference: dict, values: np.ndarray) -> float:
    """Population stability index of `values` against a `reference_bins` distribution:
    sum over bins of (actual - expected) x ln(actual / expected)."""
    expected = np.maximum(np.asarray(reference["shares"]), PSI_FLOOR)
    actual = np.maximum(np.asarray(_shares(np.asarray(values, dtype=np.float64), np.asarray(reference["edges"]))),
                        PSI_FLOOR)
    value = float(np.sum((actual - expected) * np.log(actual / expected)))
    return 0.0 if math.isclose(value, 0.0, abs_tol=1e-12) else value
