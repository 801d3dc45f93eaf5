"""A job on several instances: one program per host, each with its own container root, run side by side.

SageMaker names a job's instances ``algo-1`` ... ``algo-N``. Locally, a job on one instance keeps its
container root at ``<job dir>/root``; on several, host ``algo-i`` has ``<job dir>/hosts/algo-i/root`` and
its own log. Each host is started by the job runtime with its hostname and an /etc/hosts naming its peers,
and its own writable environment over its image's, where its ``pip install`` goes; with network isolation
the job's hosts share one private network and reach nothing else.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from pipelines.local import job_runtime
from pipelines.local.environments import Environment
from pipelines.local.executors.base import StepRun, run_program


@dataclass(frozen=True)
class Host:
    """One instance of a job."""

    name: str
    directory: Path  # its work directory: logs, pid file, container root

    @property
    def root(self) -> Path:
        """Where its container paths (``/opt/ml``) live."""
        return self.directory / "root"

    @property
    def opt_ml(self) -> Path:
        """The folder that is its ``/opt/ml``."""
        return job_runtime.host_path(self.root, job_runtime.CONTAINER_ROOT)


@dataclass(frozen=True)
class HostProgram:
    """What one host runs: the entrypoint, its environment, its working directory and the image's files."""

    host: Host
    command: list[str]
    environment: Mapping[str, Any]
    workdir: str = "/"
    image_files: Sequence[tuple[Path, str]] = ()
    python_env: Environment | None = None  # the environment its interpreter is (None: the engine's)
    engine_code: bool = False  # a job program of the engine's own (its packages importable)


def job_hosts(run: StepRun, count: int) -> list[Host]:
    """The hosts of a job on ``count`` instances."""
    if count == 1:
        return [Host("algo-1", run.job_dir)]
    return [Host(f"algo-{i + 1}", run.job_dir / "hosts" / f"algo-{i + 1}") for i in range(count)]


@dataclass
class HostsRun:
    """How each host's program ended, and which failed first (the others may then have been stopped)."""

    jobs: dict[str, job_runtime.JobRun]
    failed: list[str]

    @property
    def first_failure(self) -> tuple[str, job_runtime.JobRun] | None:
        return (self.failed[0], self.jobs[self.failed[0]]) if self.failed else None


def run_on_hosts(run: StepRun, programs: list[HostProgram], job_kind: str, stopped_detail: str = "",
                 isolated: bool = False) -> HostsRun:
    """Run every host's program at once; when one fails, the others are stopped (as SageMaker ends the job).

    ``isolated``: the job's network isolation. Log lines carry the host name when there are several.
    """
    hosts = [p.host for p in programs]
    results: dict[str, job_runtime.JobRun] = {}
    failed: list[str] = []
    errors: list[BaseException] = []

    def one(p: HostProgram, network: job_runtime.Network) -> None:
        log = run.log if len(programs) == 1 else lambda line: run.log(f"[{p.host.name}] {line}")
        layer = None
        try:
            layer = run.environments.job_layer(p.python_env)
            spec = job_runtime.JobSpec(p.command, p.host.opt_ml, p.host.directory, p.environment, p.host.name,
                                       tuple(h.name for h in hosts), p.workdir, tuple(p.image_files), network=network,
                                       python_env=layer.root, python_layers=layer.layers[1:], python_writable=True,
                                       engine_code=p.engine_code)
            job = run_program(run, spec, job_kind, stopped_detail, log=log)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(exc)
            job = job_runtime.JobRun(1, [str(exc)])
        finally:
            if layer is not None:
                shutil.rmtree(layer.root, ignore_errors=True)
        results[p.host.name] = job
        if job.exit_code != 0 and not failed:
            failed.append(p.host.name)
            for other in hosts:
                if other.name != p.host.name:
                    job_runtime.kill_leftovers(other.directory)

    for p in programs:
        p.host.directory.mkdir(parents=True, exist_ok=True)
    with run.runtime.job_network(isolated, len(programs)) as network:
        if len(programs) == 1:  # no thread needed for a job on one instance
            one(programs[0], network)
        else:
            threads = [threading.Thread(target=one, args=(p, network), name=f"host-{p.host.name}") for p in programs]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    if errors:
        raise errors[0]
    return HostsRun({h.name: results[h.name] for h in hosts}, failed)
