"""Run a job's program with the container's ``/opt/ml`` paths pointing into its job directory.

Two mechanisms, used together: every argument that names a path under ``/opt/ml`` is
rewritten to the job directory; and, where the OS allows an unprivileged private mount
namespace (``unshare``), the job directory is also bind-mounted on ``/opt/ml`` so that
scripts that hardcode those paths work unchanged. Where it does not, that is said once.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

CONTAINER_ROOT = "/opt/ml"
PYTHON_COMMANDS = {"python", "python3"}


def host_path(job_root: Path, container_path: str) -> Path:
    """Where a container path lives in the job directory."""
    return job_root / container_path.lstrip("/")


def rewrite(argument: str, job_root: Path) -> str:
    """An argument with a leading /opt/ml path mapped into the job directory."""
    if argument == CONTAINER_ROOT or argument.startswith(CONTAINER_ROOT + "/"):
        return str(host_path(job_root, argument))
    return argument


@functools.lru_cache(maxsize=1)
def mount_namespace_available() -> bool:
    """True if ``unshare`` can give a process a private /opt/ml here."""
    unshare = shutil.which("unshare")
    if not unshare:
        return False
    probe = [unshare, "--mount", "--map-root-user", "sh", "-c",
             f"mkdir -p {CONTAINER_ROOT} 2>/dev/null; mount --bind /tmp {CONTAINER_ROOT} 2>/dev/null"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def command_line(entrypoint: list[str], job_root: Path) -> tuple[list[str], str | None]:
    """The host command for a container entrypoint, and a one-line notice if /opt/ml can't be mounted."""
    program = [sys.executable if i == 0 and part in PYTHON_COMMANDS else rewrite(part, job_root)
               for i, part in enumerate(entrypoint)]
    if not mount_namespace_available():
        return program, (f"this OS gives no private mount namespace: only arguments naming {CONTAINER_ROOT}/... "
                         f"are mapped; a script that hardcodes {CONTAINER_ROOT} paths in its code will not find them")
    mounted = host_path(job_root, CONTAINER_ROOT)
    script = (f"mkdir -p {CONTAINER_ROOT} && mount --bind {shlex.quote(str(mounted))} {CONTAINER_ROOT} "
              f"&& exec {shlex.join(program)}")
    return [shutil.which("unshare") or "unshare", "--mount", "--map-root-user", "sh", "-c", script], None


def run_logged(command: list[str], env: dict[str, str], cwd: Path, log: Callable[[str], None],
               log_file: Path) -> tuple[int, list[str]]:
    """Run ``command``, streaming each output line to ``log`` and ``log_file``; returns (exit code, last lines)."""
    tail: list[str] = []
    with open(log_file, "a", encoding="utf-8") as sink:
        process = subprocess.Popen(command, env={**os.environ, **env}, cwd=cwd, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace")
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\n")
            sink.write(line + "\n")
            log(line)
            tail = (tail + [line])[-5:]
        return process.wait(), tail
