"""What one ingest run did, file by file: the report, and the ledger entry of each file."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pipelines.expectations import CRITICAL, WARNING
from pipelines.landing import LandingFile
from pipelines.results import failed

log = logging.getLogger("pipelines.ingest")


@dataclass
class IngestReport:
    """What one ingest run did, file by file, and what its checks found."""

    run_id: str
    batch_clock: datetime  # 'now' for the future-timestamp check: the run's start unless given
    files: list[dict] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # where the time went, by step

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f["status"] == status)

    def _sum(self, key: str) -> int:
        return sum(f[key] for f in self.files)

    rows_loaded = property(lambda self: self._sum("rows_loaded"))
    rows_quarantined = property(lambda self: self._sum("rows_quarantined"))
    rows_pending = property(lambda self: self._sum("rows_pending"))
    critical = property(lambda self: failed(self.results, CRITICAL), doc="Failed critical checks: the run fails.")
    warnings = property(lambda self: failed(self.results, WARNING))

    @property
    def passed(self) -> bool:
        """False after a critical failure: scoring and publishing must not use this run."""
        return not self.critical

    def add_seconds(self, step: str, seconds: float) -> None:
        self.seconds[step] = self.seconds.get(step, 0.0) + seconds


def refusal(landing_file: LandingFile) -> tuple[str, str, str | None]:
    """(status, error, check) of a file refused on sight: unsafe, unknown format, or seen bytes."""
    if landing_file.problem:
        status = landing_file.status_if_refused
        return status, landing_file.problem, "file_accepted" if status == "skipped" else "file_readable"
    return "duplicate", "same bytes as an earlier file; nothing loaded", None


def new_entry(landing_file: LandingFile, seq: int, run_id: str) -> dict:
    return {
        "load_id": f"L{seq:07d}", "load_seq": seq, "run_id": run_id, "source": landing_file.source,
        "file_path": landing_file.relative, "file_sha256": landing_file.sha256,
        "file_format": landing_file.file_format, "file_bytes": landing_file.size,
        "status": "loaded", "rows_in": 0, "rows_loaded": 0, "rows_quarantined": 0, "rows_pending": 0,
        "error": None, "duplicate_of": None, "started_at": utcnow(), "seconds": 0.0,
    }


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def log_entry(entry: dict) -> None:
    if entry["status"] == "loaded":
        log.info("%s: %d rows loaded, %d quarantined, %d pending", entry["file_path"], entry["rows_loaded"],
                 entry["rows_quarantined"], entry["rows_pending"])
    else:
        log.warning("%s: %s: %s", entry["file_path"], entry["status"], entry["error"])
