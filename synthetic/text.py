"""Codes to text: record ids from 0-based indexes, and labels from code columns (polars expressions)."""

from __future__ import annotations

import polars as pl

# prefix and digits of each kind of id: S000001, O0000000042, B00000007, SH..., DP...
ID_FORMATS = {"supplier": ("S", 6), "order": ("O", 10), "buyer": ("B", 8), "shipment": ("SH", 10),
              "dispute": ("DP", 9)}


def record_id(kind: str, index: pl.Expr) -> pl.Expr:
    """Readable key from a 0-based index (zero-padded; wider numbers simply grow)."""
    prefix, width = ID_FORMATS[kind]
    return pl.format(f"{prefix}{{}}", (index.cast(pl.Int64) + 1).cast(pl.String).str.zfill(width))


def label(column: str, labels: tuple[str, ...]) -> pl.Expr:
    """Text of a code column: labels[code], null for a negative code."""
    return pl.col(column).replace_strict(list(range(len(labels))), list(labels), default=None,
                                         return_dtype=pl.String)
