"""suprel evaluate: the scores against a generated marketplace's truth, and the two peers."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.evaluate import evaluate
from pipelines.ingest import ingest
from pipelines.scoring import score
from pipelines.settings import DataPaths
from tests.conftest import copy_landing

AS_OF = dt.date(2024, 5, 29)  # the small marketplace's last day


@pytest.fixture(scope="module")
def scored(tmp_path_factory, small_marketplace, config) -> DataPaths:
    paths = copy_landing(small_marketplace, DataPaths(tmp_path_factory.mktemp("evaluate") / "data"))
    ingest(paths, config)
    score(paths, config, AS_OF, "evaluate-test")
    return paths


def test_the_report_has_every_figure_for_the_product_and_both_peers(scored, config):
    report = evaluate(scored, config)
    assert report["as_of_date"] == str(AS_OF) and report["suppliers"] == 60
    for system in ("product", "raw_rates", "fixed_scorecard"):
        figures = report["systems"][system]
        assert set(figures["spearman_by_band"]) == {"1-4", "5-19", "20-99", "100+"}
        assert sum(b["suppliers"] for b in figures["spearman_by_band"].values()) <= 60
        assert 0 <= figures["good_suppliers_suspended_share"] <= 1
    # the scores carry real signal about the latent reliability, even on 60 suppliers
    assert report["systems"]["product"]["spearman_20_plus"] > 0.4
    assert report["fraud_rings"]["suppliers"] >= 1


def test_the_command_prints_json_and_refuses_without_truth(scored, tmp_path):
    result = CliRunner().invoke(main, ["evaluate", "--data-dir", str(scored.root), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["suppliers"] == 60
    empty = CliRunner().invoke(main, ["evaluate", "--data-dir", str(tmp_path / "nothing")])
    assert empty.exit_code == 2 and "no warehouse at" in empty.output and "run `suprel ingest" in empty.output
