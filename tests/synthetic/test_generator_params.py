"""MarketplaceParams validation: a wrong value fails early and names the parameter."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from synthetic import MarketplaceParams, write_marketplace


def test_defaults_are_valid():
    params = MarketplaceParams()
    assert (params.suppliers, params.days, params.file_format) == (200, 365, "csv")


@pytest.mark.parametrize("field, value", [
    ("suppliers", 0), ("suppliers", 2.5), ("suppliers", True), ("days", 0), ("days", "30"),
    ("seed", -1), ("start", "2024-01-01"), ("start", datetime(2024, 1, 1, 12)),
    ("orders_per_supplier_day", 0), ("orders_per_supplier_day", float("nan")),
    ("orders_per_supplier_day", -0.5), ("file_format", "xlsx"), ("file_format", ".csv"),
    ("duplicate_rate", -0.01), ("late_arrival_rate", 1.5), ("dirty_rate", "0.1"),
    ("fraud_ring_share", 2),
])
def test_invalid_value_names_the_parameter(field, value):
    with pytest.raises(ValueError, match=field):
        MarketplaceParams(**{field: value})


@pytest.mark.parametrize("file_format", ["csv", "csv.gz", "parquet", "jsonl"])
def test_every_contract_format_is_accepted(file_format):
    assert MarketplaceParams(file_format=file_format, start=date(2025, 6, 1)).file_format == file_format


def test_refuses_to_mix_with_an_earlier_run(tmp_path):
    params = MarketplaceParams(suppliers=3, days=5)
    write_marketplace(tmp_path, params)
    with pytest.raises(FileExistsError, match="landing"):
        write_marketplace(tmp_path, params)


def test_rejects_params_of_the_wrong_type(tmp_path):
    with pytest.raises(ValueError, match="params"):
        write_marketplace(tmp_path, {"suppliers": 3})
