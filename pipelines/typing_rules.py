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


def cleaned(column: str, null_tokens: tuple[str, ...]) -> str:
    """The column's text trimmed, with empty strings and null tokens turned into NULL."""
    tokens = ", ".join(literal(t) for t in ("", *null_tokens))
    return f"CASE WHEN trim({quote(column)}) IN ({tokens}) THEN NULL ELSE trim({quote(column)}) END"


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


def checks(column: Column, v: str) -> list[Check]:
    """The column's failure conditions, most basic first."""
    found = []
    if column.required:
        found.append(Check("missing_required", f"{v} IS NULL", f"required column {column.name} is empty"))
    typed = typed_value(column, v)
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
    detail are cut to 80 characters so a megabyte-long field cannot flood a report.
    """
    cleaned_exprs, typed_exprs, reason_cases, column_cases, detail_cases = [], [], [], [], []
    for column in source.columns:
        v = f"_clean_{column.name}"
        cleaned_exprs.append(f"{cleaned(column.name, null_tokens) if column.name in present else 'NULL::VARCHAR'} AS {v}")
        typed_exprs.append(f"{typed_value(column, v)} AS {quote(column.name)}")
        for check in checks(column, v):
            shown = f"left({v}, 80)"
            reason_cases.append(f"WHEN {check.condition} THEN {literal(check.reason)}")
            column_cases.append(f"WHEN {check.condition} THEN {literal(column.name)}")
            detail_cases.append(f"WHEN {check.condition} THEN printf({literal(check.message)}, {shown})"
                                if "%s" in check.message else f"WHEN {check.condition} THEN {literal(check.message)}")
    malformed = "raw_record IS NOT NULL"
    return (
        f"SELECT {', '.join(quote(c) for c in carried)}, {', '.join(typed_exprs)}, "
        f"CASE WHEN {malformed} THEN 'malformed_record' {' '.join(reason_cases)} END AS __reason, "
        f"CASE WHEN {malformed} THEN NULL {' '.join(column_cases)} END AS __column, "
        f"CASE WHEN {malformed} THEN 'the record could not be split into the file''s columns (its text is in raw_record)' "
        f"{' '.join(detail_cases)} END AS __detail "
        f"FROM (SELECT *, {', '.join(cleaned_exprs)} FROM {relation})"
    )
