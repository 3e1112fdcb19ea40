"""The contract's typing rules as SQL: a typed value and a failure reason per column.

A row is quarantined at its first failing column, in contract order, with a reason code
(`missing_required`, `bad_timestamp`, `bad_date`, `bad_amount`, `bad_boolean`) and a
sentence naming the column and the value. These are the rules without which a value has
no type. Rules over typed values (enum values, amounts >= 0, timestamps in order, ...)
are expectations: pipelines/expectations.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.contract import Column, Source
from pipelines.warehouse import literal, quote

# Money: USD with at most two decimals (CONTRACT.md); a third decimal is refused, not rounded.
AMOUNT_PATTERN = r"^[+-]?[0-9]{1,16}(\.[0-9]{1,2})?$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


@dataclass(frozen=True)
class Check:
    """One way a column can fail: a SQL condition over the cleaned value `v`."""

    reason: str
    condition: str
    message: str  # printf template; %s is the value


def typed_value(column: Column, v: str) -> str:
    """SQL giving the typed value of cleaned text `v` (NULL when it does not type)."""
    if column.kind == "timestamp":
        return f"CAST(TRY_CAST({v} AS TIMESTAMPTZ) AS TIMESTAMP)"
    if column.kind == "date":
        return f"CASE WHEN regexp_full_match({v}, {literal(DATE_PATTERN)}) THEN TRY_CAST({v} AS DATE) END"
    if column.kind == "decimal":
        return f"CASE WHEN regexp_full_match({v}, {literal(AMOUNT_PATTERN)}) THEN TRY_CAST({v} AS DECIMAL(18,2)) END"
    if column.kind == "boolean":
        return f"CASE lower({v}) WHEN 'true' THEN true WHEN 'false' THEN false END"
    return v


def checks(column: Column, v: str, typed: str) -> list[Check]:
    """The column's failure conditions, most basic first, on cleaned text `v` and its typed value `typed`."""
    found = []
    if column.required:
        found.append(Check("missing_required", f"{v} IS NULL", f"required column {column.name} is empty"))
    if column.kind == "timestamp":
        found.append(Check("bad_timestamp", f"{v} IS NOT NULL AND ({typed} IS NULL OR NOT isfinite({typed}))",
                           f"{column.name} = \"%s\" is not an ISO-8601 timestamp"))
    elif column.kind == "date":
        found.append(Check("bad_date", f"{v} IS NOT NULL AND {typed} IS NULL",
                           f"{column.name} = \"%s\" is not a YYYY-MM-DD date"))
    elif column.kind == "decimal":
        found.append(Check("bad_amount", f"{v} IS NOT NULL AND {typed} IS NULL",
                           f"{column.name} = \"%s\" is not an amount in USD with at most 2 decimals"))
    elif column.kind == "boolean":
        found.append(Check("bad_boolean", f"{v} IS NOT NULL AND {typed} IS NULL",
                           f"{column.name} = \"%s\" is not true or false"))
    return found


def typing_select(source: Source, present: set[str], null_tokens: tuple[str, ...], relation: str,
                  carried: tuple[str, ...] = ("line_number",)) -> str:
    """SELECT over `relation`: the `carried` columns, typed columns, and __reason, __column, __detail.

    Contract columns missing from the file (optional ones) come out NULL. Values in the
    detail are cut to 80 characters so a megabyte-long field cannot flood a report. Each
    value is trimmed, cleaned and cast once, in nested selects, and the failure conditions
    read the typed values: written inline, every CASE branch cast every column again.
    """
    trimmed, cleaned_exprs, typed_exprs, reason_cases, column_cases, detail_cases = [], [], [], [], [], []
    for column in source.columns:
        v, t = f"_clean_{column.name}", f"_typed_{column.name}"
        trimmed.append(f"{_trimmed(column.name) if column.name in present else 'NULL::VARCHAR'} AS {v}")
        cleaned_exprs.append(f"{_nulled(v, null_tokens)} AS {v}")
        typed_exprs.append(f"{typed_value(column, v)} AS {t}")
        for check in checks(column, v, t):
            shown = f"left({v}, 80)"
            reason_cases.append(f"WHEN {check.condition} THEN {literal(check.reason)}")
            column_cases.append(f"WHEN {check.condition} THEN {literal(column.name)}")
            detail_cases.append(f"WHEN {check.condition} THEN printf({literal(check.message)}, {shown})"
                                if "%s" in check.message else f"WHEN {check.condition} THEN {literal(check.message)}")
    malformed = "raw_record IS NOT NULL"
    kept = ", ".join(quote(c) for c in (*carried, "raw_record"))
    cleaned_names = ", ".join(f"_clean_{c.name}" for c in source.columns)
    inner = (f"SELECT {kept}, {', '.join(cleaned_exprs)} FROM (SELECT {kept}, {', '.join(trimmed)} FROM {relation})")
    return (
        f"SELECT {', '.join(quote(c) for c in carried)}, "
        f"{', '.join(f'_typed_{c.name} AS {quote(c.name)}' for c in source.columns)}, "
        f"CASE WHEN {malformed} THEN 'malformed_record' {' '.join(reason_cases)} END AS __reason, "
        f"CASE WHEN {malformed} THEN NULL {' '.join(column_cases)} END AS __column, "
        f"CASE WHEN {malformed} THEN 'the record could not be split into the file''s columns (its text is in raw_record)' "
        f"{' '.join(detail_cases)} END AS __detail "
        f"FROM (SELECT {kept}, {cleaned_names}, {', '.join(typed_exprs)} FROM ({inner}))"
    )


def _trimmed(column: str) -> str:
    return f"trim({quote(column)})"


def _nulled(v: str, null_tokens: tuple[str, ...]) -> str:
    tokens = ", ".join(literal(t) for t in ("", *null_tokens))
    return f"CASE WHEN {v} IN ({tokens}) THEN NULL ELSE {v} END"
