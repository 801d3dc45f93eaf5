"""A job on several instances: one program per host, each with its own container root, run side by side.

SageMaker names a job's instances ``algo-1`` ... ``algo-N``. Locally, a job on one instance keeps its
container root at ``<job dir>/root``; on several, host ``algo-i`` has ``<job dir>/hosts/algo-i/root``, its
own log, and an /etc/hosts in which every host name is loopback, so programs that reach their peers
by name find them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pipelines.local import sandbox
from pipelines.local.executors.base import StepRun, run_program


@dataclass(frozen=True)
class Host:
    """One instance of a job."""

    name: str
    directory: Path  # its work directory: logs, pid file, container root

    @property
    def root(self) -> Path:
        """Where its ``/opt/ml`` (and other container paths) live."""
        return self.directory / "root"


@dataclass(frozen=True)
class HostProgram:
    """What one host runs."""

    host: Host
    command: list[str]
    environment: Mapping[str, Any]
    container_workdir: str | None = None


def job_hosts(run: StepRun, count: int) -> list[Host]:
    """The hosts of a job on ``count`` instances."""
    if count == 1:
        return [Host("algo-1", run.job_dir)]
    return [Host(f"algo-{i + 1}", run.job_dir / "hosts" / f"algo-{i + 1}") for i in range(count)]


def _etc_hosts(run: StepRun, hosts: list[Host]) -> Path | None:
    if len(hosts) == 1:
        return None
    try:
        original = Path("/etc/hosts").read_text()
    except OSError:
        original = "127.0.0.1 localhost\n"
    path = run.job_dir / "etc-hosts"
    path.write_text(original.rstrip("\n") + "\n127.0.0.1 " + " ".join(h.name for h in hosts) + "\n")
    return path


@dataclass
class HostsRun:
    """How each host's program ended, and which failed first (the others may then have been stopped)."""

    jobs: dict[str, sandbox.JobRun]
    failed: list[str]

    @property
    def first_failure(self) -> tuple[str, sandbox.JobRun] | None:
        return (self.failed[0], self.jobs[self.failed[0]]) if self.failed else None


def run_on_hosts(run: StepRun, programs: list[HostProgram], job_kind: str, stopped_detail: str = "") -> HostsRun:
    """Run every host's program at once; when one fails, the others are stopped (as SageMaker ends the job).

    Log lines carry the host name when there are several.
    """
    hosts = [p.host for p in programs]
    etc_hosts = _etc_hosts(run, hosts)
    results: dict[str, sandbox.JobRun] = {}
    failed: list[str] = []
    errors: list[BaseException] = []

    def one(p: HostProgram) -> None:
        log = run.log if len(programs) == 1 else lambda line: run.log(f"[{p.host.name}] {line}")
        try:
            job = run_program(run, p.command, job_kind, p.environment, p.host.root, stopped_detail,
                              work_dir=p.host.directory, log=log, etc_hosts=etc_hosts,
                              container_workdir=p.container_workdir)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(exc)
            job = sandbox.JobRun(1, [str(exc)])
        results[p.host.name] = job
        if job.exit_code != 0 and not failed:
            failed.append(p.host.name)
            for other in hosts:
                if other.name != p.host.name:
                    sandbox.kill_leftovers(other.directory)

    for p in programs:
        p.host.directory.mkdir(parents=True, exist_ok=True)
    if len(programs) == 1:  # no thread needed for a job on one instance
        one(programs[0])
    else:
        threads = [threading.Thread(target=one, args=(p,), name=f"host-{p.host.name}") for p in programs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return HostsRun({h.name: results[h.name] for h in hosts}, failed)
