"""The warehouse's daily facts: computed in batches of days, they are the facts of one pass."""

from __future__ import annotations

import shutil

from pipelines.ingest import ingest
from pipelines.scoring import _day_batches, ensure_scoring_schema, ibis_backend, latest_data_day, update_facts
from pipelines.settings import DataPaths
from pipelines.warehouse import connect, transaction
from tests.conftest import copy_landing


def facts_after_update(paths: DataPaths, batch_orders: int) -> tuple[list[tuple], list[tuple]]:
    """(the facts, the batches of days) of a first update up to the newest day of the data."""
    as_of = latest_data_day(paths)
    con = connect(paths)
    try:
        ensure_scoring_schema(con)
        first = con.execute("SELECT min(updated_at)::DATE FROM staging.orders").fetchall()[0][0]
        batches = _day_batches(con, first, as_of, batch_orders)
        with transaction(con):
            update_facts(con, ibis_backend(con), as_of, batch_orders)
        return con.execute("SELECT * FROM features.supplier_day_facts ORDER BY ALL").fetchall(), batches
    finally:
        con.close()


def test_facts_computed_in_batches_of_days_equal_the_facts_of_one_pass(small_marketplace, tmp_path, config):
    one_pass = copy_landing(small_marketplace, DataPaths(tmp_path / "one_pass"))
    ingest(one_pass, config)
    batched = DataPaths(tmp_path / "batched")
    shutil.copytree(one_pass.warehouse_dir, batched.warehouse_dir)

    whole, single = facts_after_update(one_pass, batch_orders=0)
    in_batches, batches = facts_after_update(batched, batch_orders=800)

    assert len(single) == 1 and len(batches) >= 3
    assert all(later[0] == earlier[1].fromordinal(earlier[1].toordinal() + 1)
               for earlier, later in zip(batches, batches[1:]))  # consecutive, no day twice or missed
    assert len(whole) > 10_000
    assert in_batches == whole
