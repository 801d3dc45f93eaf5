"""What one job host runs, and the container paths it sees.

Each job host has a host folder that is its container's ``/opt/ml``. Executors lay out that folder and
describe the program with a ``JobSpec``; a runtime backend decides how the program is started (see
``pipelines.local.job_runtime``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Sequence

from pipelines.errors import UnsafePathError

CONTAINER_ROOT = "/opt/ml"
PROCESSING_ROOT = "/opt/ml/processing/"
PYTHON_COMMANDS = {"python", "python3"}


@dataclass(frozen=True)
class Network:
    """The network a job host is in: this machine's (it reaches the store's S3 endpoint on loopback), or
    a private one (``isolated``) shared only by the hosts of one job (``namespace_pid``: a process in it)."""

    isolated: bool = False
    namespace_pid: int | None = None


HOST_NETWORK = Network()


@dataclass(frozen=True)
class JobSpec:
    """One job host's program and what its container gives it.

    ``command`` is the container's entrypoint (``python``/``python3`` as its first word is the job's
    interpreter). ``image_files`` are the image's own programs: host path -> container path, read-only.
    ``engine_dirs`` are folders of the engine visible read-write at their own path, and
    ``engine_code`` makes the engine's packages importable: both only for the engine's own job
    programs (the built-in algorithm's emulation), never for a definition's. ``python_env`` is a
    virtualenv (visible read-only) whose interpreter replaces the engine's; ``python_layers`` are the
    environments whose libraries it sees after its own (visible read-only too); ``python_writable``
    makes ``python_env`` writable: the job's own layer, never a cached environment.
    """

    command: Sequence[str]
    opt_ml: Path  # the host folder that is the container's /opt/ml
    work_dir: Path  # the engine's folder for this host (log, pid file); the program never sees it
    environment: Mapping[str, str] = field(default_factory=dict)
    hostname: str = "algo-1"
    hosts: Sequence[str] = ("algo-1",)
    workdir: str = "/"
    image_files: Sequence[tuple[Path, str]] = ()
    engine_dirs: Sequence[Path] = ()
    engine_code: bool = False
    network: Network = HOST_NETWORK
    python_env: Path | None = None  # a virtualenv whose interpreter the job runs with (None: the engine's)
    python_layers: Sequence[Path] = ()
    python_writable: bool = False  # ``python_env`` is the job's own layer: it may write there (pip install)


def host_path(job_root: Path, container_path: str) -> Path:
    """Where a container path lives in the job directory; UnsafePathError for a '..' segment."""
    if ".." in PurePosixPath(container_path).parts:
        raise UnsafePathError(f"container path {container_path!r} has a '..' segment")
    return job_root / container_path.lstrip("/")


def processing_path(job_root: Path, local_path: Any, field: str) -> Path:
    """Where a processing input's or output's ``LocalPath`` lives; it must lie under /opt/ml/processing/,
    as SageMaker requires."""
    if (not isinstance(local_path, str) or ".." in PurePosixPath(local_path).parts
            or not (local_path.rstrip("/") + "/").startswith(PROCESSING_ROOT) or local_path.rstrip("/") + "/" == PROCESSING_ROOT):
        raise UnsafePathError(f"{local_path!r} must be a path under {PROCESSING_ROOT} without '..' segments", field=field)
    return host_path(job_root, local_path)


def etc_hosts(hosts: Sequence[str]) -> str:
    """An /etc/hosts in which every host of the job is loopback, as its peers are reachable by name on SageMaker."""
    return ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"127.0.0.1\t{' '.join(hosts)}\n")
