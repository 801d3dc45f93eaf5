"""Where a step's job logs are: its program's, each further host's, and each training job of a tuning job.

Logs are found and read through the store's door (``safe_files``): a log that is a symbolic link or a special
file (a job program running without the sandbox can plant one) is refused naming it, never followed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from pipelines.local import safe_files
from pipelines.local.store import Store


def step_logs(store: Store, execution_id: str, step_name: str) -> list[tuple[str, Path]]:
    """(label, file) of each log the step's job wrote, the first host's first."""
    job_dir = store.job_dir(execution_id, step_name)
    logs = [("algo-1", job_dir / "job.log")]
    for name in ("job.log", "worker.log"):
        logs += [(f"{host}: {name}", job_dir / "hosts" / host / name) for host in _folders(store, job_dir / "hosts")]
    logs += [(f"training job {trial}", job_dir / "trials" / trial / "job.log")
             for trial in _folders(store, job_dir / "trials")]
    return [(label, path) for label, path in logs if safe_files.kind(store.root, path) is not None]


def _folders(store: Store, folder: Path) -> list[str]:
    return [name for name, kind in safe_files.entries(store.root, folder) if kind == "folder"]


def log_lines(store: Store, path: Path) -> Iterator[str]:
    """The lines of one log (undecodable bytes replaced); UnsafePathError if it is a link or a special file."""
    with safe_files.open_read(store.root, path) as handle:
        for line in handle:
            yield line.decode("utf-8", errors="replace")
