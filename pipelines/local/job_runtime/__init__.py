"""The one job runtime: every job program (processing, training on any image, script mode, function
steps, the built-in algorithm's emulation) and every ``serve`` program is started here.

Executors say *what* to run (a ``JobSpec``: the entrypoint, the host folder that is its container's
``/opt/ml``, its hostname and peers, its working directory, its network); a backend decides *how*:

- ``Bubblewrap``: each job host in a container of its own (``bubblewrap.py``), as on SageMaker;
- ``Unsandboxed``: where bubblewrap is missing or cannot create namespaces, the program runs as the
  user with ``/opt/ml`` mapped into its job folder (``unsandboxed.py``); a run says so once, and every
  job's not-enforced report repeats it.

``automatic()`` picks the first that works on this machine, once per process.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from typing import IO, Callable, ContextManager, Protocol

from pipelines.local.job_runtime.bubblewrap import Bubblewrap, unusable_reason
from pipelines.local.job_runtime.common import engine_code_command, engine_module_command
from pipelines.local.job_runtime.processes import (JOB_DIR_VARIABLE, PID_FILE, JobRun, Launch, kill_group,
                                                   kill_leftovers, popen, run_logged)
from pipelines.local.job_runtime.spec import (CONTAINER_ROOT, HOST_NETWORK, JobSpec, Network, host_path,
                                              processing_path)
from pipelines.local.job_runtime.unsandboxed import Unsandboxed

__all__ = ["CONTAINER_ROOT", "HOST_NETWORK", "JOB_DIR_VARIABLE", "PID_FILE", "Bubblewrap", "JobRun", "JobSpec",
           "Network", "Runtime", "Unsandboxed", "automatic", "engine_code_command", "engine_module_command", "host_path", "kill_group", "kill_leftovers",
           "processing_path", "run", "start"]


class Runtime(Protocol):
    """A backend: how a job host's program is started."""

    sandboxed: bool
    notice: str | None  # why jobs are not isolated, when they are not

    def launch(self, spec: JobSpec) -> Launch: ...

    def job_network(self, isolated: bool, host_count: int) -> ContextManager[Network]: ...


@functools.lru_cache(maxsize=1)
def automatic() -> Runtime:
    """Bubblewrap where it works on this machine, else the unsandboxed runner (with the reason)."""
    bwrap = shutil.which("bwrap")
    reason = unusable_reason(bwrap)
    return Bubblewrap(bwrap) if reason is None and bwrap else Unsandboxed(reason or "bubblewrap is unusable")


def run(runtime: Runtime, spec: JobSpec, log: Callable[[str], None],
        max_runtime_seconds: float | None = None) -> JobRun:
    """Run one job host's program to its end, its output streamed to ``log`` and ``work_dir/job.log``."""
    spec.work_dir.mkdir(parents=True, exist_ok=True)
    return run_logged(runtime.launch(spec), log, spec.work_dir / "job.log", max_runtime_seconds)


def start(runtime: Runtime, spec: JobSpec, output: IO | None = None) -> subprocess.Popen:
    """Start a long-running program (a ``serve``) with its output to ``output`` (None: to this process's
    output and errors); the caller stops it (``kill_group``)."""
    spec.work_dir.mkdir(parents=True, exist_ok=True)
    return popen(runtime.launch(spec), output)

