"""The risk model's runs: training and registry, backtest, per-supplier prediction, drift, reports.

- `dataset`: point-in-time order features (models/risk_features.py) and labels from the warehouse;
- `model`: the scikit-learn pipeline, fitted on older orders and calibrated on newer ones;
- `evaluation`: AUC, Brier, log loss, calibration by decile, ECE, PSI;
- `backtest`: rolling-origin folds against baselines and the generator's truth;
- `registry`: versioned models under <data-dir>/artifacts/models/ with a `current` pointer;
- `train`: train on everything matured by a date and register;
- `predict`: each supplier's risk for a typical order, and drift against the training orders;
- `report`: the self-contained HTML pages of a training and of a backtest.
"""
