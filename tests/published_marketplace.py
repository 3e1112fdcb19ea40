"""One published marketplace per test session, shared by the analyst, report and notebook tests.

Built from the session's `small_marketplace` (tests/conftest.py) with every supplier
renamed to a hostile string (HTML, a spreadsheet formula, rich markup), then run through
the plain steps of pipelines/run.py (no Prefect server needed): ingest, gate, then score
and publish two days a week apart, so that there is a history, eligibility changes and
movers. Read-only for the tests: a test that writes copies it first.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil

from pipelines import run as steps
from pipelines.publish_metrics import METRICS_FILE
from pipelines.settings import DataPaths, load_config
from tests.conftest import copy_landing

HOSTILE_NAMES = (
    "<script>alert(1)</script> Trading",
    '=HYPERLINK("http://evil.example/x","click me")',
    "[bold red]Styled[/bold red] & <b>Sons</b>",
)
_built: dict[str, DataPaths] = {}


def hostile_name(supplier_id: str) -> str:
    return f"{HOSTILE_NAMES[int(supplier_id.lstrip('S')) % len(HOSTILE_NAMES)]} {supplier_id}"


def published_marketplace(small_marketplace: DataPaths, tmp_path_factory) -> DataPaths:
    """The shared dataset (built on first use in the session)."""
    if "paths" not in _built:
        _built["paths"] = _build(small_marketplace, tmp_path_factory.mktemp("published_marketplace"))
    return _built["paths"]


def _rename_suppliers(paths: DataPaths) -> None:
    for path in sorted((paths.landing / "suppliers").glob("*.csv")):
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
        header = rows[0]
        ids, names = header.index("supplier_id"), header.index("supplier_name")
        for row in rows[1:]:
            if len(row) == len(header) and row[ids][:1] == "S" and row[ids][1:].isdigit():
                row[names] = hostile_name(row[ids])
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        path.write_text(out.getvalue(), encoding="utf-8")


def _build(small_marketplace: DataPaths, root) -> DataPaths:
    paths = copy_landing(small_marketplace, DataPaths(root / "data"))
    _rename_suppliers(paths)
    config = load_config()
    outcome = steps.RunOutcome(steps.new_run_id("daily-refresh"))
    started = steps.now_utc()
    steps.quality_gate(steps.ingest_step(paths, config, outcome.run_id))
    last = steps.resolve_as_of(paths, None)
    for day in (last - dt.timedelta(days=7), last):
        steps.score_step(paths, config, day, outcome.run_id)
        published = steps.publish_step(paths, config, day, outcome.run_id, force_reason="tests: a week apart")
        assert (paths.published / "history" / f"as_of={day}" / METRICS_FILE).exists()  # evidence published too
    outcome.as_of, outcome.status, outcome.message = last, published.status, published.message
    steps.record_run(paths, outcome, "daily-refresh", started, "tests: a week apart")
    return paths


def with_fake_model(market: DataPaths, target: DataPaths) -> DataPaths:
    """A copy of the publication with a registered risk model's metadata (backtest, drift),
    in the registry's layout, but no fitted model: what the analyst side reads."""
    shutil.copytree(market.published, target.published)
    folder = target.artifacts / "models" / "risk-test"
    (folder / "drift").mkdir(parents=True)
    bins = [{"orders": 50, "mean_predicted": p, "observed_rate": p * 1.1} for p in (0.01, 0.02, 0.04, 0.07, 0.12)]
    systems = {name: {"auc": auc, "brier": 0.04, "log_loss": 0.15, "ece": 0.004, "mean_predicted": 0.05,
                      "defect_rate": 0.05, "orders": 250, "calibration": bins}
               for name, auc in (("hist_gradient_boosting/isotonic", 0.74), ("supplier_shrunk_rate", 0.68),
                                 ("truth", 0.78))}
    folds = [{"number": n, "systems": {k: {**v, "auc": v["auc"] - 0.01 * n} for k, v in systems.items()}}
             for n in (1, 2, 3)]
    backtest = {"evaluation_date": "2024-05-29", "model": "hist_gradient_boosting/isotonic", "folds": folds,
                "pooled": systems}
    (folder / "metadata.json").write_text(json.dumps({
        "model_version": "risk-test", "estimator": "hist_gradient_boosting + isotonic calibration",
        "training": {"as_of": "2024-05-01", "orders": 1000}, "features": [{"name": "amount", "dtype": "Float64"}],
        "backtest": backtest}), encoding="utf-8")
    (folder / "drift" / "as_of=2024-05-29.json").write_text(json.dumps({
        "as_of_date": "2024-05-29", "model_version": "risk-test", "orders": 300, "threshold": 0.25,
        "prediction_psi": 0.05, "feature_psi": {"amount": 0.31, "days_to_ship": 0.02},
        "drifted_features": ["amount"], "should_retrain": True}), encoding="utf-8")
    (target.artifacts / "models" / "current").write_text("risk-test\n", encoding="utf-8")
    return target
