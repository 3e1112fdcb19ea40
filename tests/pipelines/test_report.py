"""The run report (pipelines/report.py): self-contained, escaped, and rendered by a real browser."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines import analyst, cli
from pipelines.analyst import charts
from pipelines.report import write_report
from pipelines.settings import DataPaths
from tests.published_marketplace import published_marketplace, with_fake_model

CHROMIUM = Path("/usr/bin/chromium")
SECTIONS = ("Last run", "Data quality", "Ingestion", "Scores, risk and tiers", "Eligibility changes", "Top movers",
            "Risk model")


@pytest.fixture(scope="module")
def market(small_marketplace, tmp_path_factory) -> DataPaths:
    return published_marketplace(small_marketplace, tmp_path_factory)


@pytest.fixture(scope="module")
def page(market, tmp_path_factory) -> Path:
    return write_report(analyst.open(market.root), tmp_path_factory.mktemp("report") / "report.html")


def test_the_page_is_self_contained_and_shows_every_upstream_string_as_text(page):
    text = page.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f"<h2>{section}</h2>" in text
    assert not re.search(r"<script|<link|<iframe|<object|<embed|\bsrc=|\bhref=|url\(|@import|javascript:", text, re.I)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Trading S0" in text
    assert "=HYPERLINK(&quot;http://evil.example/x&quot;,&quot;click me&quot;) S0" in text
    assert "[bold red]Styled[/bold red] &amp; &lt;b&gt;Sons&lt;/b&gt; S0" in text
    assert "<b>Sons</b>" not in text
    assert "Content-Security-Policy" in text and text.count("<svg") >= 8


def test_the_report_command_writes_the_page_with_a_progress_bar(market, tmp_path):
    target = tmp_path / "run.html"
    result = CliRunner().invoke(cli.main, ["report", "--data-dir", str(market.root), "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.exists() and "Wrote" in result.output


def test_a_registered_model_adds_its_calibration_chart_and_no_warehouse_is_no_failure(market, tmp_path):
    """Only published/ and a model's metadata: the warehouse sections say there is none."""
    paths = with_fake_model(market, DataPaths(tmp_path / "data"))
    text = write_report(analyst.open(paths.root), tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Calibration by decile" in text and "risk-test" in text and "retraining advised" in text
    assert "No validated ingest run yet" in text and not paths.warehouse.exists()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (Debian package `chromium`; "
                                                 ".ci/run installs it)")
def test_the_report_renders_in_headless_chromium_with_its_charts(page, tmp_path):
    flags = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--hide-scrollbars", "--window-size=1280,2400"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<svg") >= 8 and dom.count("<rect") > 50
    assert "<circle" in dom  # the scatter plot's dots made it into the DOM
    assert "<script" not in dom.lower() and "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "<a " not in dom and "=HYPERLINK(" in dom
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_charts_escape_their_labels_and_draw_something_for_no_data():
    svg = charts.bars(["<script>alert(1)</script>"], [1.0], "A & B", value_format="{:.1f}")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "A &amp; B" in svg
    assert "no values" in charts.histogram([None, float("nan")], "t", "x")
    assert charts.nice_ticks(0.0, 0.93) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
