"""Batch-level limits, given row counts, expect the verdicts and figures of batch_checks.py."""

from __future__ import annotations

import dataclasses

import pytest

from pipelines.batch_checks import failing_share_problem, volume_problem, volume_range


@pytest.fixture(scope="module")
def quality(config):
    return dataclasses.replace(config.quality, max_failing_share=0.2, failing_share_min_rows=20,
                               volume_min_history_files=5, volume_spread_limit=6.0)


@pytest.mark.parametrize("rows_in, failing, rejected", [
    (100, 20, False),   # exactly at the limit passes
    (100, 21, True),
    (19, 19, False),    # too small a file to judge as a whole
    (20, 5, True),
])
def test_a_file_is_rejected_above_the_failing_share_once_it_is_big_enough(quality, rows_in, failing, rejected):
    assert (failing_share_problem(rows_in, failing, quality) is not None) is rejected


def test_the_failing_share_message_gives_the_figures(quality):
    assert failing_share_problem(40, 10, quality) == (
        "10 of 40 rows (25%) failed validation, above quality.max_failing_share = 20%: the whole file is rejected")


def test_no_volume_check_until_there_is_enough_history(quality):
    assert volume_range([100, 100, 100, 100], quality) is None
    assert volume_problem(100_000, [100] * 4, "orders", quality) is None


@pytest.mark.parametrize("history, expected", [
    ([100] * 10, (40.0, 160.0)),                         # MAD 0: Poisson noise, sqrt(100) = 10, x 6
    ([2] * 10, (0.0, 2 + 6 * 2 ** 0.5)),                  # small counts are noisy, never below 0
    ([0] * 10, (0.0, 6.0)),                               # a source that is mostly empty: spread at least 1
    ([900, 1000, 1100, 1000, 950, 1050, 1000, 1000, 980, 1020],   # MAD 20 x 1.4826 < sqrt(1000) = 31.6
     (1000 - 6 * 1000 ** 0.5, 1000 + 6 * 1000 ** 0.5)),
    ([500, 1000, 1500, 1000, 500, 1500, 1000, 1000, 500, 1500], (0.0, 1000 + 6 * 1.4826 * 500)),  # MAD 500
])
def test_the_volume_range_is_the_median_plus_or_minus_a_robust_spread(quality, history, expected):
    assert volume_range(history, quality) == pytest.approx(expected)


def test_a_volume_far_outside_the_range_rejects_the_file_with_the_figures(quality):
    history = [100] * 10
    assert volume_problem(160, history, "orders", quality) is None
    assert volume_problem(40, history, "orders", quality) is None
    assert volume_problem(161, history, "orders", quality) == (
        "161 rows is outside the expected range 40-160 for orders (median 100 rows over its last 10 loaded files; "
        "limit quality.volume_spread_limit = 6): the whole file is rejected")
    assert "0 rows is outside the expected range 40-160" in volume_problem(0, history, "orders", quality)
