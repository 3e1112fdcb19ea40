"""Landing files follow CONTRACT.md section 1, except exactly the dirty rows the truth lists."""

from __future__ import annotations

import gzip
import re
from dataclasses import replace
from datetime import timedelta

import polars as pl
import pytest

from pipelines.contract import ORDER_STATUSES, SOURCES
from synthetic import MarketplaceParams, write_marketplace
from tests.synthetic.generator_landing import read_source, timestamp, violations

BATCH_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}\.(csv|csv\.gz|parquet|jsonl)$")


def test_layout_is_one_nonempty_batch_per_source_per_day(generated):
    landing = generated.data_dir / "landing"
    assert sorted(p.name for p in landing.iterdir()) == sorted(SOURCES)
    first, last = generated.params.start, generated.params.start + timedelta(days=generated.params.days - 1)
    for source in SOURCES:
        files = sorted((landing / source).iterdir())
        assert files, source
        for path in files:
            assert BATCH_NAME.match(path.name), path
            assert first.isoformat() <= path.name[:10] <= last.isoformat(), path
            assert path.read_text(encoding="utf-8").count("\n") >= 2, f"{path} has no rows"
    assert generated.summary["files"] == sum(len(list((landing / s).iterdir())) for s in SOURCES)


def test_columns_are_the_contracts_in_order(generated):
    for source, spec in SOURCES.items():
        path = sorted((generated.data_dir / "landing" / source).iterdir())[0]
        assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(spec.column_names)


@pytest.fixture(scope="module", params=["csv", "csv.gz", "parquet", "jsonl"])
def formatted(request, tmp_path_factory, generated):
    """The shared marketplace again in each format (csv is re-made: a check of the others)."""
    params = replace(generated.params, file_format=request.param)
    data_dir = tmp_path_factory.mktemp(request.param.replace(".", "_"))
    write_marketplace(data_dir, params)
    return data_dir


def test_every_row_types_against_the_contract_except_the_dirty_ones(formatted):
    dirty = pl.read_parquet(formatted / "truth" / "dirty_rows.parquet")
    # ~60 supplier rows at 2% may well give no dirty supplier row
    assert dirty.height > 50 and {"orders", "shipments", "disputes"} <= set(dirty["source"]) <= set(SOURCES)
    assert set(dirty["kind"]) >= {"bad_decimal", "bad_timestamp", "bad_date", "bad_enum", "negative_amount",
                                  "missing_required", "bad_boolean"}
    for source in SOURCES:
        rows = read_source(formatted, source)
        failing = rows.filter(violations(rows, source)).select("file_name", "line_number").sort(pl.all())
        listed = dirty.filter(pl.col("source") == source).select("file_name", "line_number").sort(pl.all())
        assert failing.equals(listed), source


def test_line_numbers_are_physical_lines(generated):
    # no value spans lines, so row n of a CSV file sits on physical line n + 1
    for source in SOURCES:
        for path in (generated.data_dir / "landing" / source).iterdir():
            rows = pl.read_csv(path, infer_schema=False).height
            assert path.read_bytes().count(b"\n") == rows + 1, path


def test_csv_gz_is_gzip_of_the_same_csv(tmp_path):
    params = MarketplaceParams(suppliers=10, days=30, seed=5)
    write_marketplace(tmp_path / "plain", params)
    write_marketplace(tmp_path / "gz", replace(params, file_format="csv.gz"))
    plain = sorted((tmp_path / "plain" / "landing").rglob("*.csv"))
    assert len(plain) > 30
    for path in plain:
        packed = tmp_path / "gz" / path.relative_to(tmp_path / "plain").with_suffix(".csv.gz")
        assert gzip.decompress(packed.read_bytes()) == path.read_bytes()


def test_supplier_names_survive_quoting(generated):
    names = read_source(generated.data_dir, "suppliers")["supplier_name"].to_list()
    assert any("," in n for n in names) and any('"' in n for n in names)
    assert any(not n.isascii() for n in names)


def test_nothing_lands_before_it_happens_or_after_the_period(generated):
    end = generated.params.start + timedelta(days=generated.params.days)
    for source in SOURCES:
        rows = read_source(generated.data_dir, source)
        rows = rows.filter(~violations(rows, source))
        updated_on = timestamp("updated_at").dt.date()
        batch_on = pl.col("file_name").str.slice(0, 10).str.to_date()
        rows = rows.with_columns(lag=(batch_on - updated_on).dt.total_days())
        # a row lands 0-10 days late; a resend of it may come up to 10 days after that
        first_sending = rows.unique(SOURCES[source].column_names, keep="first", maintain_order=True)
        assert first_sending["lag"].min() >= 0 and first_sending["lag"].max() <= 10, source
        assert rows["lag"].max() <= 20, source
        assert rows.select(updated_on.max()).item() < end


def test_late_rows_and_resent_rows_exist(generated):
    rows = read_source(generated.data_dir, "orders")
    rows = rows.filter(~violations(rows, "orders"))
    late = rows.filter(pl.col("updated_at").str.slice(0, 10) < pl.col("file_name").str.slice(0, 10))
    content = [c for c in rows.columns if c not in ("file_name", "line_number")]
    resent = rows.group_by(content).agg(files=pl.col("file_name").n_unique()).filter(pl.col("files") > 1)
    assert late.height > 0.02 * rows.height
    assert resent.height > 0.01 * rows.height


def test_one_version_per_record_per_day_in_its_own_batch(generated):
    for source, spec in SOURCES.items():
        rows = read_source(generated.data_dir, source)
        rows = rows.filter(~violations(rows, source))
        same_day = rows.filter(pl.col("updated_at").str.slice(0, 10) == pl.col("file_name").str.slice(0, 10))
        assert same_day.select(spec.key, "file_name").is_duplicated().sum() == 0, source


def test_every_order_in_truth_lands_and_nothing_else(generated):
    truth = set(generated.truth("orders")["order_id"])
    rows = read_source(generated.data_dir, "orders")
    landed = set(rows.filter(~violations(rows, "orders"))["order_id"])
    assert truth == landed
    for source in ("shipments", "disputes"):
        rows = read_source(generated.data_dir, source)
        assert set(rows.filter(~violations(rows, source))["order_id"]) <= truth


def test_every_status_and_cancelling_party_occurs(generated):
    orders = read_source(generated.data_dir, "orders")
    orders = orders.filter(~violations(orders, "orders"))
    disputes = read_source(generated.data_dir, "disputes")
    disputes = disputes.filter(~violations(disputes, "disputes"))
    assert set(orders["status"]) == set(ORDER_STATUSES)
    assert set(orders["cancelled_by"].drop_nulls()) == {"buyer", "supplier", "platform"}
    assert set(disputes["status"]) == {"open", "escalated", "resolved", "withdrawn"}
    assert disputes.filter(pl.col("status").is_in(["open", "escalated"]))["outcome"].is_null().all()
