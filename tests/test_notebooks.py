"""The analyst notebooks run end to end, with their charts, on the session's published marketplace."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pipelines.settings import DataPaths
from tests.published_marketplace import published_marketplace, with_fake_model

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
EXPECTED = {"01_supplier_scorecard", "02_risk_model_evaluation", "03_protection_policy_what_if"}


@pytest.fixture(scope="module")
def market(small_marketplace, tmp_path_factory) -> DataPaths:
    return published_marketplace(small_marketplace, tmp_path_factory)


def test_the_notebooks_are_committed_without_outputs():
    assert {p.stem for p in NOTEBOOKS} >= EXPECTED
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code), path.name


def run(path: Path, data_dir: Path, workdir: Path, monkeypatch) -> list:
    """Execute the notebook against a dataset (the kernel inherits SUPREL_DATA_DIR); its outputs."""
    monkeypatch.setenv("SUPREL_DATA_DIR", str(data_dir))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    for o in outputs:  # hostile supplier names stay text, in tables as in charts
        assert "<script>alert" not in o.get("data", {}).get("text/html", "") + o.get("data", {}).get("image/svg+xml", "")
    return outputs


def svg_charts(outputs: list) -> list[str]:
    return [o["data"]["image/svg+xml"] for o in outputs if "image/svg+xml" in o.get("data", {})]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_runs_end_to_end_and_draws_its_charts(path, market, tmp_path, monkeypatch):
    charts = svg_charts(run(path, market.root, tmp_path, monkeypatch))
    assert len(charts) >= 3 and all(c.startswith("<svg") for c in charts)


def test_the_risk_notebook_shows_a_registered_models_backtest_calibration_and_drift(market, tmp_path, monkeypatch):
    paths = with_fake_model(market, DataPaths(tmp_path / "data"))
    path = next(p for p in NOTEBOOKS if p.stem == "02_risk_model_evaluation")
    outputs = run(path, paths.root, tmp_path, monkeypatch)
    text = "".join(o.get("text", "") for o in outputs)
    assert "registered risk model: risk-test" in text and "evaluated 2024-05-29" in text
    charts = " ".join(svg_charts(outputs))
    assert "AUC per backtest fold" in charts and "Backtest calibration by decile" in charts and "Feature PSI" in charts
