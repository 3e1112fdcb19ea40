"""The risk side of a scorecard: where a supplier's risk comes from and what drives it.

`model_info` reads the risk model registry (pipelines/risk, <data-dir>/artifacts/models/)
when there is one: version, training window, backtest figures (with calibration by
decile) and the latest drift report. Only JSON is read, never the fitted model.

`drivers` explains one supplier's risk from its published evidence: each score
component's shrunk failure rate against the median of all suppliers. The risk model's
own per-feature attributions are not published, so these are the evidence that moves the
risk, not the model's internals; without a model the risk *is* the shrunk 365-day
order-defect rate, and the first driver says so.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from models.score import Component
from pipelines.analyst.reasons import component_label
from pipelines.settings import DataPaths


def model_info(paths: DataPaths) -> dict | None:
    """The current risk model's metadata, backtest and latest drift, or None without a model."""
    root = paths.artifacts / "models"
    pointer = root / "current"
    if not pointer.exists():
        return None
    version = pointer.read_text(encoding="utf-8").strip()
    try:
        meta = json.loads((root / version / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    backtest = meta.get("backtest") or _latest_json(paths.artifacts / "backtests", "figures.json")
    drift = _latest_json(root / version / "drift", None)
    return {"version": version, "estimator": meta.get("estimator"), "training": meta.get("training", {}),
            "features": [f["name"] for f in meta.get("features", [])], "backtest": backtest, "drift": drift}


def calibration_bins(info: dict | None) -> list[dict] | None:
    """The chosen model's pooled calibration by decile from its backtest, if there is one."""
    backtest = (info or {}).get("backtest") or {}
    pooled = backtest.get("pooled", {}).get(backtest.get("model"), {})
    return pooled.get("calibration") or None


def _latest_json(folder: Path, name: str | None) -> dict | None:
    """The newest as_of=* entry of a folder: <entry>/<name>, or the entry itself when name is None."""
    if not folder.exists():
        return None
    entries = sorted(folder.glob("as_of=*"))
    for entry in reversed(entries):
        target = entry / name if name else entry
        try:
            return json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return None


def source(model_version: str | None) -> str:
    if model_version and model_version != "none":
        return f"risk model {model_version}: P(an order typical of the supplier, placed tomorrow, becomes a defect)"
    return "no risk model: the supplier's shrunk 365-day order-defect rate stands in for it"


def drivers(supplier_id: str, components: pl.DataFrame, policy_components: tuple[Component, ...],
            model_version: str | None) -> list[dict]:
    """The supplier's evidence that raises or lowers its risk, strongest first."""
    by_name = {c.name: c for c in policy_components}
    medians = components.group_by("component").agg(pl.col("rate").median().alias("peer_median"))
    own = components.filter(pl.col("supplier_id") == supplier_id).join(medians, on="component")
    ranked = []
    for row in own.iter_rows(named=True):
        ratio = row["rate"] / row["peer_median"] if row["peer_median"] else 1.0
        effect = "raises" if ratio > 1.1 else "lowers" if ratio < 0.9 else "neutral"
        label = component_label(by_name[row["component"]]) if row["component"] in by_name else row["component"]
        explanation = (f"{label}: {row['rate']:.1%} after shrinkage ({row['x']:.0f} of {row['n']:.0f} buyer-capped), "
                       f"against a median of {row['peer_median']:.1%}: {effect} risk" if effect != "neutral" else
                       f"{label}: {row['rate']:.1%} after shrinkage, close to the median {row['peer_median']:.1%}")
        # Without a model the risk is the long-window order-defect rate itself: it comes first.
        is_the_risk = model_version in (None, "none") and row["component"] == "order_defect"
        ranked.append(((is_the_risk, abs(ratio - 1)), {
            "factor": label, "component": row["component"], "supplier_rate": row["rate"],
            "peer_median_rate": row["peer_median"], "failures": row["x"], "trials": row["n"], "effect": effect,
            "explanation": explanation}))
    return [driver for _key, driver in sorted(ranked, key=lambda pair: pair[0], reverse=True)]
