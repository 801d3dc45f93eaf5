"""Where a step's job logs are: its program's, each further host's, and each training job of a tuning job."""

from __future__ import annotations

from pathlib import Path

from pipelines.local.store import Store


def step_logs(store: Store, execution_id: str, step_name: str) -> list[tuple[str, Path]]:
    """(label, file) of each log the step's job wrote, the first host's first."""
    job_dir = store.job_dir(execution_id, step_name)
    hosts = sorted(job_dir.glob("hosts/*/job.log")) + sorted(job_dir.glob("hosts/*/worker.log"))
    logs = [("algo-1", job_dir / "job.log")] + [(f"{path.parent.name}: {path.name}", path) for path in hosts]
    logs += [(f"training job {path.parent.name}", path) for path in sorted(job_dir.glob("trials/*/job.log"))]
    return [(label, path) for label, path in logs if path.is_file()]
