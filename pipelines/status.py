"""The warehouse's state for a person or a script: the load ledger and counts per layer.

Per file and in total, rows in = rows loaded + rows quarantined + rows pending: pending
rows wait in pending.<source> for the record they refer to (pipelines/pending.py); when
they are released or expire, their file's counts move from pending to loaded or
quarantined.
"""

from __future__ import annotations

from pipelines.settings import DataPaths
from pipelines.warehouse import connect, table_counts

FILE_FIELDS = ("load_id", "file_path", "file_sha256", "source", "file_format", "status",
               "rows_in", "rows_loaded", "rows_quarantined", "rows_pending", "error", "duplicate_of", "run_id")


def warehouse_status(paths: DataPaths) -> dict:
    """Every ledger entry, the totals, and the row count of every layer's table."""
    if not paths.warehouse.exists():
        return {"warehouse": str(paths.warehouse), "files": [], "totals": _totals([]), "tables": {}}
    con = connect(paths, read_only=True)
    try:
        rows = con.execute(f"SELECT {', '.join(FILE_FIELDS)} FROM meta.load_ledger ORDER BY load_seq").fetchall()
        files = [dict(zip(FILE_FIELDS, row)) for row in rows]
        files = [{**f, "path": f["file_path"], "sha256": f["file_sha256"]} for f in files]
        return {"warehouse": str(paths.warehouse), "files": files, "totals": _totals(files),
                "tables": table_counts(con)}
    finally:
        con.close()


def _totals(files: list[dict]) -> dict:
    by_status: dict[str, int] = {}
    for f in files:
        by_status[f["status"]] = by_status.get(f["status"], 0) + 1
    return {
        "files": len(files),
        "files_by_status": by_status,
        "rows_in": sum(f["rows_in"] or 0 for f in files),
        "rows_loaded": sum(f["rows_loaded"] or 0 for f in files),
        "rows_quarantined": sum(f["rows_quarantined"] or 0 for f in files),
        "rows_pending": sum(f["rows_pending"] or 0 for f in files),
    }
