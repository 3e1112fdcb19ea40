"""One pipeline run per dataset at a time.

DuckDB allows one writer per file, and Prefect's temporary server ignores concurrency
limits, so the pipeline serialises itself: a run holds an exclusive `flock` on
`<data-dir>/warehouse/run.lock` for its whole length. The kernel drops the lock when the
holding process ends, however it ends (SIGKILL included), so a killed run never leaves a
stale lock behind; the file's text (pid, start time, command) only serves the message
a second run prints.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

from pipelines.settings import DataPaths


class RunInProgress(RuntimeError):
    """Another run holds the dataset; the message says which."""


@contextmanager
def run_lock(paths: DataPaths, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the dataset's run lock; wait up to wait_seconds for it, then refuse clearly."""
    paths.warehouse_dir.mkdir(parents=True, exist_ok=True)
    lock_path = paths.warehouse_dir / "run.lock"
    handle = open(lock_path, "a+")
    try:
        _acquire(handle, lock_path, wait_seconds)
        handle.seek(0)
        handle.truncate()
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        handle.write(f"pid {os.getpid()}, started {started}, command {' '.join(sys.argv[:3])}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the flock


def _acquire(handle, lock_path, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.seek(0)
                holder = handle.read().strip() or "unknown process"
                raise RunInProgress(
                    f"another pipeline run is in progress on this dataset ({holder}; lock {lock_path}). "
                    f"Wait for it to finish, or pass --wait SECONDS to queue behind it."
                ) from None
            time.sleep(0.2)
