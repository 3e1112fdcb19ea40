"""The generator's knobs: one frozen, validated object (the CLI builds it from options)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import date, datetime

FILE_FORMATS = ("csv", "csv.gz", "parquet", "jsonl")
_RATES = ("duplicate_rate", "late_arrival_rate", "dirty_rate", "fraud_ring_share")


@dataclass(frozen=True)
class MarketplaceParams:
    """What to generate. Invalid values raise ValueError naming the parameter.

    Parameters
    ----------
    suppliers : number of suppliers (some register during the period).
    days : length of the period in days; batch files are dated start .. start + days - 1.
    start : first day of the period.
    seed : same seed and arguments give byte-identical files.
    orders_per_supplier_day : mean daily orders of a supplier; volume is heavy-tailed around it.
    file_format : csv | csv.gz | parquet | jsonl.
    duplicate_rate : share of rows sent a second time, identically, in a later batch.
    late_arrival_rate : share of rows landing 1-10 days after the day of their updated_at.
    dirty_rate : share of extra corrupted rows (each fails the contract's typing).
    fraud_ring_share : share of suppliers inflating their record through a ring of buyers.
    """

    suppliers: int = 200
    days: int = 365
    start: date = date(2024, 1, 1)
    seed: int = 0
    orders_per_supplier_day: float = 0.6
    file_format: str = "csv"
    duplicate_rate: float = 0.01
    late_arrival_rate: float = 0.02
    dirty_rate: float = 0.0
    fraud_ring_share: float = 0.02

    def __post_init__(self) -> None:
        _check_int(self, "suppliers", minimum=1)
        _check_int(self, "days", minimum=1, maximum=3660)
        _check_int(self, "seed", minimum=0)
        # datetime is a date subclass, but a time of day would silently shift every batch
        if not isinstance(self.start, date) or isinstance(self.start, datetime):
            raise ValueError(f"start must be a datetime.date, got {self.start!r}")
        rate = self.orders_per_supplier_day
        if not _is_number(rate) or not math.isfinite(rate) or not 0 < rate <= 1000:
            raise ValueError(f"orders_per_supplier_day must be a number in (0, 1000], got {rate!r}")
        if self.file_format not in FILE_FORMATS:
            raise ValueError(f"file_format must be one of {', '.join(FILE_FORMATS)}, got {self.file_format!r}")
        for name in _RATES:
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1, got {value!r}")

    @property
    def extension(self) -> str:
        """File name suffix of a batch, without the dot."""
        return self.file_format

    def as_dict(self) -> dict:
        """The parameters as plain values (for summaries and logs)."""
        return {f.name: str(getattr(self, f.name)) if f.name == "start" else getattr(self, f.name)
                for f in fields(self)}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(params: MarketplaceParams, name: str, minimum: int, maximum: int | None = None) -> None:
    value = getattr(params, name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ValueError(f"{name} must be {bound}, got {value}")
