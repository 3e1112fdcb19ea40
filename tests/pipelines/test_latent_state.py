"""The latent filters' kept states (pipelines/risk/latent_state.py): which states a run
keeps, and their storage, from a warehouse that kept one state before two were kept."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np

from models.latent_rate import GRID, FilterState
from pipelines.risk import latent_state

DAY = dt.date(2025, 6, 1)


def _state(day: dt.date, seed: int = 0) -> FilterState:
    rng = np.random.default_rng(seed)
    return FilterState(day, {"defect": np.array(["S1", "S2"], dtype=object)},
                       {"defect": rng.dirichlet(np.ones(len(GRID)), size=2)})


def test_a_run_resumed_after_the_far_day_keeps_the_earliest_unchanged_state_before_its_own():
    far, near = latent_state.keep_days(DAY)
    assert near == DAY and far == DAY - dt.timedelta(days=latent_state.FAR_DAYS_BEFORE)
    older, yesterday = (far - dt.timedelta(days=5), (1, 1)), (near - dt.timedelta(days=1), (2, 2))
    made_both = [(_state(far), (3, 3)), (_state(near), (4, 4))]
    assert latent_state.to_keep([older, yesterday], made_both, far) == (made_both, [])
    made_near = made_both[1:]
    assert latent_state.to_keep([older, yesterday], made_near, far) == (made_near, [older])
    assert latent_state.to_keep([], made_near, far) == (made_near, [])
    assert latent_state.to_keep([older], [], far) == ([], [])


def _loaded(con: duckdb.DuckDBPyConnection, key: str) -> list[tuple[FilterState, tuple[int, int]]]:
    return [(latent_state.load(con, day), digest) for day, digest in latent_state.kept_days(con, key)]


def test_states_saved_over_the_one_state_layout_load_back_the_same(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("CREATE SCHEMA features; CREATE SCHEMA meta")
        con.execute(f"CREATE TABLE features.latent_filter_state (stream VARCHAR, supplier_id VARCHAR, "
                    f"state DOUBLE[{len(GRID)}])")
        con.execute("CREATE TABLE meta.latent_filter_state (day DATE, streams VARCHAR, evidence_rows BIGINT, "
                    "evidence_digest UBIGINT)")
        con.execute("INSERT INTO meta.latent_filter_state VALUES (?, 'key', 1, 1)", [DAY])
        assert latent_state.kept_days(con, "key") == []  # the one-state layout: nothing to resume from
        kept = [(_state(DAY - dt.timedelta(days=30), 1), (10, 11)), (_state(DAY, 2), (12, 13))]
        latent_state.save(con, latent_state.Keeping(kept, []), "key")
        loaded = _loaded(con, "key")
        assert latent_state.kept_days(con, "other filters") == []
    assert [(state.day, digest) for state, digest in loaded] == [(state.day, digest) for state, digest in kept]
    for (state, _), (expected, _) in zip(loaded, kept):
        assert list(state.supplier_ids["defect"]) == ["S1", "S2"]
        assert np.array_equal(state.state["defect"], expected.state["defect"])


def test_a_state_kept_again_with_the_same_digest_stays_and_the_others_are_replaced(tmp_path):
    far, near = _state(DAY - dt.timedelta(days=30), 1), _state(DAY, 2)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("CREATE SCHEMA features; CREATE SCHEMA meta")

        def rowids(day: dt.date) -> list[int]:
            return [r for (r,) in con.execute("SELECT rowid FROM features.latent_filter_state WHERE day = ? "
                                              "ORDER BY rowid", [day]).fetchall()]

        def save(made: list, key: str = "key", carried: tuple = ()) -> None:
            latent_state.save(con, latent_state.Keeping(made, list(carried)), key)

        save([(far, (1, 1)), (near, (2, 2))])
        stored_far = rowids(far.day)
        later = _state(DAY + dt.timedelta(days=1), 3)
        save([(later, (3, 3))], carried=[(far.day, (1, 1))])  # the far state carried, not read
        assert rowids(far.day) == stored_far and rowids(near.day) == []  # it was not written again
        assert [(s.day, d) for s, d in _loaded(con, "key")] == [(far.day, (1, 1)), (later.day, (3, 3))]
        save([(later, (3, 3))])  # made again with the same digest: stays too
        assert rowids(far.day) == [] and len(rowids(later.day)) == 2
        changed = _state(far.day, 4)  # the same day, other evidence: replaced
        save([(changed, (5, 5))], carried=[(later.day, (9, 9))])  # a carried state whose digest moved goes
        [(state, digest)] = _loaded(con, "key")
        assert digest == (5, 5) and np.array_equal(state.state["defect"], changed.state["defect"])
        con.execute("DELETE FROM meta.latent_filter_state")  # states without their meta rows are replaced too
        save([(changed, (5, 5))])
        assert len(rowids(far.day)) == 2
        save([(changed, (5, 5))], "other filters")
        assert latent_state.kept_days(con, "key") == [] and len(_loaded(con, "other filters")) == 1
