"""The risk model's runs (pipelines/risk/) on a small generated marketplace, ingested for
real: backtest folds, calibration, deterministic training, the registry, scoring with
the model's risk, drift, and the `train` / `backtest` commands."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import duckdb
import ibis
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.ingest import ingest
from models.risk_features import daily_evidence, evidence_before, evidence_stream, snapshot_points
from pipelines.risk import dataset, evaluation, latent_state, model, registry
from pipelines.risk.backtest import backtest, plan_folds, summarise, training_window
from pipelines.risk.dataset import RiskData, feature_names, refresh_facts, truth_probabilities
from pipelines.risk.predict import drift_report, score_with_risk, supplier_risk
from pipelines.risk.train import train
from pipelines.scoring import latest_data_day
from pipelines.settings import DataPaths, load_config
from synthetic import MarketplaceParams, write_marketplace

# Windows short enough for 240 days of data: 2 test periods of 20 days, the last ending 70
# days before the data's end, each trained on 60 days of orders matured 70 days later.
SMALL_RISK = """
risk:
  training_days: 60
  maturity_days: 70
  backtest:
    folds: 2
    test_days: 20
"""


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """(paths, config path, config): 60 suppliers over 240 days, generated and ingested."""
    root = tmp_path_factory.mktemp("risk_pipeline")
    paths = DataPaths(root / "data")
    write_marketplace(paths.root, MarketplaceParams(suppliers=60, days=240, seed=11))
    config_path = root / "small.yaml"
    config_path.write_text(SMALL_RISK, encoding="utf-8")
    config = load_config(config_path)
    assert ingest(paths, config).passed
    refresh_facts(paths, config, latest_data_day(paths))
    return paths, config_path, config


@pytest.fixture(scope="module")
def trained(market) -> dict:
    """`suprel train --json` (with its backtest): the registered model's metadata."""
    paths, config_path, _ = market
    result = CliRunner().invoke(main, ["train", "--json", "--data-dir", str(paths.root), "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_backtest_never_tests_on_an_order_it_trained_on(market):
    paths, _, config = market
    evaluation_day = latest_data_day(paths)
    plan = plan_folds(evaluation_day, config.risk)
    assert [f.number for f in plan] == [1, 2]
    for earlier, later in zip(plan, plan[1:]):
        assert later.test_first == earlier.test_last + dt.timedelta(days=1)
    assert plan[-1].test_last == evaluation_day - dt.timedelta(days=config.risk.maturity_days)
    with RiskData(paths, config) as data:
        features = data.order_features(plan[0].train_first, plan[-1].test_last)
        results = backtest(data, features, config, evaluation_day, plan, truth_probabilities(paths))
    placed = dict(features.select("order_id", "placed_on").iter_rows())
    for r in results:
        trained_on, tested_on = set(r.train_order_ids), set(r.test_order_ids)
        assert trained_on and tested_on and not trained_on & tested_on
        assert max(placed[o] for o in trained_on) <= r.fold.train_last < r.fold.cutoff < r.fold.test_first
        assert min(placed[o] for o in tested_on) >= r.fold.test_first
        assert max(placed[o] for o in tested_on) <= r.fold.test_last
        # labels of training orders were those known at the cut-off: all matured by then
        with RiskData(paths, config) as data:
            known = set(data.labels(r.fold.cutoff, r.fold.train_first, r.fold.train_last)["order_id"])
        assert trained_on <= known
    figures = summarise(results, config, evaluation_day)
    assert {"global_rate", "supplier_raw_rate", "supplier_shrunk_rate", "truth",
            "hist_gradient_boosting/isotonic", "logistic_regression/sigmoid",
            "boosting_and_logistic/sigmoid"} <= set(figures["pooled"])
    assert json.loads(json.dumps(figures)) == figures


def test_calibrated_probabilities_match_known_rates():
    """Given orders whose defect rate is known (5% where x = 0, 20% where x = 1), the
    calibrated model predicts those rates."""
    rng = np.random.default_rng(1)
    n = 30_000
    x = rng.integers(0, 2, n).astype(float)
    frame = pl.DataFrame({"x": x, "noise": rng.normal(size=n),
                          model.LABEL: rng.random(n) < np.where(x == 1, 0.20, 0.05)})
    risk = load_config().risk
    for kind, calibration in (("hist_gradient_boosting", "isotonic"), ("hist_gradient_boosting", "sigmoid"),
                              ("hist_gradient_boosting", "stacked"), ("boosting_and_logistic", "isotonic"),
                              (risk.model, risk.calibration)):
        fitted = model.fit_model(frame, ["x", "noise"], risk, kind=kind, calibration=calibration)
        p = model.predict(fitted.estimator, frame, ["x", "noise"])
        assert abs(p[x == 0].mean() - 0.05) < 0.01 and abs(p[x == 1].mean() - 0.20) < 0.015
        assert evaluation.figures(frame[model.LABEL].to_numpy(), p)["ece"] < 0.01
    assert fitted.calibration_rows == round(n * risk.calibration_share)


def test_the_averaged_pipeline_predicts_the_mean_of_its_two_pipelines():
    """Given orders with a known rate per x (and missing values, which only the trees take
    as they are): the averaged pipeline's uncalibrated probability is the mean of those of
    the trees and of the linear model fitted on the same orders."""
    rng = np.random.default_rng(2)
    n = 20_000
    x = rng.integers(0, 3, n).astype(float)
    x[rng.random(n) < 0.1] = np.nan
    frame = pl.DataFrame({"x": x, model.LABEL: rng.random(n) < np.where(x == 2, 0.2, 0.05)})
    risk = load_config().risk
    predicted = {kind: model.predict(model.fit_model(frame, ["x"], risk, kind=kind, calibration="none").estimator,
                                     frame, ["x"])
                 for kind in ("hist_gradient_boosting", "logistic_regression", "boosting_and_logistic")}
    assert np.allclose(predicted["boosting_and_logistic"],
                       (predicted["hist_gradient_boosting"] + predicted["logistic_regression"]) / 2)


def test_stacked_calibration_leans_on_the_member_that_knows():
    """Given a risk that only an interaction explains (high where x and z have the same
    sign), which the trees learn and a linear model cannot: the stacked calibration gives
    the trees' log-odds the weight, and on new orders ranks them as well as the trees
    fitted on the same orders."""
    rng = np.random.default_rng(3)

    def orders(n: int) -> pl.DataFrame:
        x, z = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
        return pl.DataFrame({"x": x, "z": z, model.LABEL: rng.random(n) < np.where(x * z > 0, 0.15, 0.03)})

    frame, new = orders(40_000), orders(40_000)
    risk = load_config().risk
    fitted = {name: model.fit_model(frame, ["x", "z"], risk, kind=kind, calibration=calibration).estimator
              for name, kind, calibration in (("stacked", "boosting_and_logistic", "stacked"),
                                              ("trees", "hist_gradient_boosting", "sigmoid"))}
    trees_weight, linear_weight = fitted["stacked"].blend_.coef_[0]
    assert trees_weight > 0.5 and abs(linear_weight) < 0.2
    y = new[model.LABEL].to_numpy()
    auc = {name: evaluation.figures(y, model.predict(e, new, ["x", "z"]))["auc"] for name, e in fitted.items()}
    assert auc["stacked"] > auc["trees"] - 0.005


def test_scoring_features_of_one_pass_equal_each_frame_computed_alone(market):
    """Scoring reads the typical orders and the recent ones from one pass over the history;
    each frame must be what a pass of its own gives (the shared context is computed at the
    points and months of both)."""
    paths, _, config = market
    as_of = latest_data_day(paths).replace(day=1) - dt.timedelta(days=1)  # a month's last: the typical order's is next
    with RiskData(paths, config) as data:
        typical, recent = data.scoring_features(as_of, 120, 45)
        alone_typical = data._features(as_of, typical_lookback_days=120)["typical"]
        alone_recent = data.order_features(as_of - dt.timedelta(days=44), as_of)
    assert typical.height == 60 and recent.height > 200
    assert recent["placed_on"].min() == as_of - dt.timedelta(days=44)
    assert typical.equals(alone_typical) and recent.equals(alone_recent)


def test_window_sums_taken_in_polars_by_chunks_of_suppliers_are_the_window_functions_bits(market, monkeypatch):
    """The pipeline takes the window sums' running sums in polars, by chunks of whole
    suppliers when the stream is long: the same float64 bits as the window functions of
    `evidence_before`, at every point of a training year and the months' first days."""
    paths, _, config = market
    as_of = latest_data_day(paths)
    monkeypatch.setattr(dataset, "STREAM_ROWS_PER_CHUNK", 5_000)
    with RiskData(paths, config) as data:
        attributes = data._attributes(as_of)
        staged = (data.tables[n] for n in ("orders", "shipments", "disputes"))
        daily = data._cache("daily", daily_evidence(data.sources.facts, attributes, *staged,
                                                   data.settings.outcome_rules))
        points = data._cache("points", snapshot_points(attributes, as_of - dt.timedelta(days=365), as_of))
        windows = data.settings.windows
        assert data.backend.to_pyarrow(evidence_stream(daily, points, windows).count()).as_py() > 3 * 5_000

        def rows(table: ibis.Table) -> pl.DataFrame:
            return pl.from_arrow(data.backend.to_pyarrow(table)).sort("supplier_id", "point_on")

        in_polars, by_windows = rows(data._evidence_before(daily, points, windows)), rows(
            evidence_before(daily, points, windows))
    assert in_polars.height > 3_000 and in_polars.columns == by_windows.columns
    assert in_polars.equals(by_windows)


def test_training_is_deterministic(market):
    """Same data, same settings: the same version, fingerprint and predictions."""
    paths, _, config = market
    as_of = latest_data_day(paths)
    first = train(paths, config, as_of, run_backtest=False)
    one = registry.load(paths, first["model_version"])
    second = train(paths, config, as_of, run_backtest=False)
    two = registry.load(paths, second["model_version"])
    assert first["model_version"] == second["model_version"]
    assert first["data_fingerprint"] == second["data_fingerprint"]
    with RiskData(paths, config) as data:
        frame = data.with_latent(data.order_features(*training_window(as_of, config.risk)),
                                 registry.latent_streams(one))
    names = feature_names(config)
    assert np.array_equal(model.predict(one.estimator, frame, names), model.predict(two.estimator, frame, names))
    other = dataclasses.replace(config, risk=dataclasses.replace(config.risk, seed=config.risk.seed + 1))
    assert train(paths, other, as_of, run_backtest=False)["model_version"] != first["model_version"]
    registry.set_current(paths, first["model_version"])


def test_the_registry_keeps_model_metadata_and_current_pointer(market, trained):
    paths, _, config = market
    version = trained["model_version"]
    assert registry.current_version(paths) == version
    loaded = registry.load(paths)
    folder = paths.artifacts / "models" / version
    assert loaded.version == version and loaded.folder == folder
    assert loaded.features == feature_names(config)
    assert {f["dtype"] for f in loaded.metadata["features"]} == {"Float64"}
    meta = loaded.metadata
    assert meta["training"]["last_placed_on"] < meta["training"]["as_of"]
    assert len(meta["data_fingerprint"]) == 64 and meta["libraries"]["scikit-learn"] == "1.9.1"
    assert meta["backtest"]["targets"]["ece"] is not None and len(meta["backtest"]["folds"]) == 2
    # training backtests the model it registers, against the baselines and the truth
    assert set(meta["backtest"]["pooled"]) == {f"{config.risk.model}/{config.risk.calibration}", "global_rate",
                                               "supplier_raw_rate", "supplier_shrunk_rate", "truth"}
    assert "<svg" in (folder / "report.html").read_text(encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="no registered risk model"):
        registry.set_current(paths, "risk-19990101-missing")
    # the latent rates' filters, fitted at the training date, are kept with the model
    with RiskData(paths, config) as data:
        assert registry.latent_streams(loaded) == data.fit_latent(dt.date.fromisoformat(meta["training"]["as_of"]))
    assert set(meta["latent_rates"]) == {"defect", "late_shipment", "late_delivery"}
    # retraining the same version without a backtest keeps the figures of its backtest
    again = train(paths, config, dt.date.fromisoformat(meta["training"]["as_of"]), run_backtest=False)
    assert again["model_version"] == version and again["backtest"] == meta["backtest"]


def test_a_model_is_refused_for_features_it_was_not_trained_on(market, trained):
    paths, _, _ = market
    loaded = registry.load(paths)
    schema = list(loaded.metadata["features"])
    registry.check_schema(loaded, schema)
    for changed, named in ((schema[1:], "missing log_amount_usd"),
                           ([{**schema[0], "dtype": "Float32"}, *schema[1:]], "retyped log_amount_usd"),
                           ([*schema, {"name": "shoe_size", "dtype": "Float64"}], "unexpected shoe_size"),
                           ([schema[1], schema[0], *schema[2:]], "another order")):
        with pytest.raises(registry.RiskModelMismatch, match=named):
            registry.check_schema(loaded, changed)


def test_scores_carry_the_current_model_risk_and_version_and_drift_is_stored(market, trained):
    paths, _, config = market
    as_of = latest_data_day(paths)
    result, predicted = score_with_risk(paths, config, as_of, "risk-test")
    assert predicted.model_version == trained["model_version"] and result.suppliers == predicted.table.num_rows
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        stored = dict(con.execute("SELECT supplier_id, risk_probability FROM scores.supplier_rankings "
                                  "WHERE as_of_date = ? AND model_version = ?",
                                  [as_of, predicted.model_version]).fetchall())
    finally:
        con.close()
    expected = dict(zip(predicted.table["supplier_id"].to_pylist(), predicted.table["risk_probability"].to_pylist()))
    assert stored == pytest.approx(expected) and len(stored) == result.suppliers
    assert all(0 < p < 1 for p in stored.values())
    drift = json.loads((paths.artifacts / "models" / predicted.model_version / "drift" /
                        f"as_of={as_of}.json").read_text())
    assert set(drift["feature_psi"]) == set(feature_names(config)) and drift["orders"] > 0
    # scored on its training date, the model compares the very orders it was referenced on
    assert str(as_of) == trained["training"]["as_of"]
    assert drift["prediction_psi"] == 0 and max(drift["feature_psi"].values()) == 0 and not drift["should_retrain"]


def test_scoring_refuses_a_model_trained_on_another_schema(market, trained, tmp_path):
    paths, _, config = market
    folder = paths.artifacts / "models" / trained["model_version"]
    meta_path = folder / "metadata.json"
    original = meta_path.read_text(encoding="utf-8")
    meta = json.loads(original)
    meta["features"] = meta["features"][:-1]
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    try:
        with pytest.raises(registry.RiskModelMismatch, match="retrain it with `suprel train`"):
            score_with_risk(paths, config, latest_data_day(paths), "risk-refused")
    finally:
        meta_path.write_text(original, encoding="utf-8")


def test_scoring_uses_the_latent_filters_the_model_was_trained_with(market, trained):
    """The filters are parameters of the model, as its coefficients are: scoring reads
    them from the registry rather than fitting them again on its own date."""
    paths, _, config = market
    as_of = latest_data_day(paths)
    folder = paths.artifacts / "models" / trained["model_version"]
    meta_path, drift_path = folder / "metadata.json", folder / "drift" / f"as_of={as_of}.json"
    original = meta_path.read_text(encoding="utf-8")
    drift = drift_path.read_text(encoding="utf-8") if drift_path.exists() else None
    before = supplier_risk(paths, config, as_of).table
    meta = json.loads(original)
    meta["latent_rates"]["defect"]["mean"] += 2.0
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    try:
        after = supplier_risk(paths, config, as_of).table
    finally:
        meta_path.write_text(original, encoding="utf-8")
        if drift is not None:
            drift_path.write_text(drift, encoding="utf-8")
    assert before["supplier_id"] == after["supplier_id"]
    assert not np.allclose(before["risk_probability"].to_numpy(), after["risk_probability"].to_numpy())


def test_scoring_resumes_the_latent_filters_kept_by_the_last_run_to_the_same_risk(market, trained, tmp_path,
                                                                                   caplog):
    """A scoring run keeps the latent rates' filters on the first day it asks for and a
    month before; the next resumes from the nearer. Expect: the risk of a run over the
    whole history, to the last bit; once a fact between the two days changes, a run
    resumed from the farther, with the risk of a run over the whole history; once a fact
    before both changes, a run over the whole history again (resuming would miss it)."""
    source, _, config = market
    shutil.copytree(source.root, tmp_path / "data")
    paths = DataPaths(tmp_path / "data")
    as_of = latest_data_day(paths)
    far, near = latent_state.keep_days(as_of - dt.timedelta(days=config.risk.drift_days - 1))

    def risk(forget: bool) -> tuple[np.ndarray, dt.date | None]:
        if forget:
            with duckdb.connect(str(paths.warehouse)) as con:
                con.execute("DELETE FROM meta.latent_filter_state")
        caplog.clear()
        with caplog.at_level("INFO", logger="pipelines.risk.dataset"):
            table = supplier_risk(paths, config, as_of).table
        resumed = re.search(r"filters resumed on (\S+)", caplog.text)
        return table["risk_probability"].to_numpy(), resumed and dt.date.fromisoformat(resumed[1])

    def change_a_fact_before(day: dt.date) -> None:  # a late file's kind of change
        with duckdb.connect(str(paths.warehouse)) as con:
            changed = con.execute(
                "UPDATE features.supplier_day_facts SET numerator = 1 - numerator WHERE metric = 'order_defect' "
                "AND day = (SELECT max(day) FROM features.supplier_day_facts WHERE day < ? "
                "AND metric = 'order_defect')", [day]).fetchall()[0][0]
        assert changed > 0

    whole, resumed = risk(forget=False)
    assert resumed is None
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        kept = con.execute("SELECT day, evidence_rows FROM meta.latent_filter_state ORDER BY day").fetchall()
        assert [day for day, _ in kept] == [far, near] and all(rows > 0 for _, rows in kept)
        assert con.execute("SELECT count(DISTINCT supplier_id) FROM features.latent_filter_state "
                           "WHERE day = ?", [far]).fetchall()[0][0] > 50
    again, resumed = risk(forget=False)
    assert resumed == near and np.array_equal(again, whole)

    change_a_fact_before(near)
    after, resumed = risk(forget=False)
    assert resumed == far and not np.array_equal(after, whole)
    fresh, resumed = risk(forget=True)
    assert resumed is None and np.array_equal(after, fresh)

    change_a_fact_before(far)
    later, resumed = risk(forget=False)
    assert resumed is None and not np.array_equal(later, after)
    fresh, resumed = risk(forget=True)
    assert resumed is None and np.array_equal(later, fresh)


def test_backtest_command_writes_a_report_and_json(market):
    paths, config_path, _ = market
    result = CliRunner().invoke(main, ["backtest", "--json", "--folds", "1", "--data-dir", str(paths.root),
                                       "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    configured = f"{load_config().risk.model}/{load_config().risk.calibration}"
    assert len(figures["folds"]) == 1 and figures["model"] == configured
    page = Path(figures["report"]).read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "<svg" in page and "supplier_shrunk_rate" in page
    assert json.loads((Path(figures["report"]).parent / "figures.json").read_text())["pooled"] == figures["pooled"]


# evaluation figures ------------------------------------------------------------------

def test_psi_is_zero_on_the_reference_and_large_on_a_shift():
    rng = np.random.default_rng(0)
    reference_values = rng.normal(size=20_000)
    reference = evaluation.reference_bins(reference_values, 10)
    assert len(reference["shares"]) == 11 and sum(reference["shares"]) == pytest.approx(1.0)
    assert evaluation.psi(reference, reference_values) == 0.0
    assert evaluation.psi(reference, rng.normal(size=20_000)) < 0.01
    assert evaluation.psi(reference, rng.normal(loc=1.0, size=20_000)) > 0.25
    with_missing = np.where(rng.random(20_000) < 0.5, np.nan, reference_values)
    assert evaluation.psi(reference, with_missing) > 1.0  # half the values went missing


def test_figures_of_perfect_and_constant_predictions():
    rng = np.random.default_rng(2)
    p = rng.uniform(0.0, 0.3, 100_000)
    y = rng.random(100_000) < p
    perfect = evaluation.figures(y, p)
    assert perfect["ece"] < 0.005 and perfect["auc"] > 0.65 and len(perfect["calibration"]) == 10
    constant = evaluation.figures(y, np.full(len(y), y.mean()))
    assert constant["auc"] == 0.5 and constant["ece"] < 0.01
    assert evaluation.auc_lift_share(0.7, 0.75) == pytest.approx(0.8)


def test_the_calendar_is_stored_in_drift_but_never_calls_for_retraining():
    """Given: orders of January-February as reference, of July now, all else the same.
    Expect: placed_month's PSI is large and stored, yet nothing has drifted."""
    names = ["placed_month", "rate_late_shipment_30"]
    before = pl.DataFrame({"placed_month": [1.0] * 50 + [2.0] * 50, "rate_late_shipment_30": np.linspace(0, 1, 100)})
    now = before.with_columns(placed_month=pl.lit(7.0))

    class Constant:
        def predict_proba(self, x):
            return np.tile([0.9, 0.1], (len(x), 1))

    current = SimpleNamespace(version="v", estimator=Constant(), metadata={"reference": {
        "features": {n: evaluation.reference_bins(before[n].to_numpy(), 10) for n in names},
        "prediction": evaluation.reference_bins(np.full(100, 0.1), 10)}})
    drift = drift_report(current, now, names, dt.date(2025, 7, 31), 0.25)
    assert drift["feature_psi"]["placed_month"] > 1 and drift["feature_psi"]["rate_late_shipment_30"] == 0
    assert drift["drifted_features"] == [] and not drift["should_retrain"]
