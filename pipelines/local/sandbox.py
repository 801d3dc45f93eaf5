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
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from pipelines.credentials import redact
from pipelines.errors import UnsafePathError

CONTAINER_ROOT = "/opt/ml"
PYTHON_COMMANDS = {"python", "python3"}


PROCESSING_ROOT = "/opt/ml/processing/"


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
    # bind an empty folder of our own, as a job folder is bound: binding a folder that holds other
    # mounts (as /tmp may) is refused in a user namespace and says nothing about job folders
    with tempfile.TemporaryDirectory(prefix="mount-probe-") as empty:
        probe = [unshare, "--mount", "--map-root-user", "sh", "-c",
                 f"mkdir -p {CONTAINER_ROOT} 2>/dev/null; mount --bind {shlex.quote(empty)} {CONTAINER_ROOT} 2>/dev/null"]
        try:
            return subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False


def command_line(entrypoint: list[str], job_root: Path, etc_hosts: Path | None = None,
                 workdir: str | None = None) -> tuple[list[str], str | None]:
    """The host command for a container entrypoint, and a one-line notice if /opt/ml can't be mounted.

    ``etc_hosts`` replaces /etc/hosts for the program (so that the host names of a multi-instance job
    resolve to loopback); ``workdir`` is the container directory it starts in.
    """
    program = [sys.executable if i == 0 and part in PYTHON_COMMANDS else rewrite(part, job_root)
               for i, part in enumerate(entrypoint)]
    if not mount_namespace_available():
        if workdir:
            program = ["sh", "-c", f"cd {shlex.quote(rewrite(workdir, job_root))} && exec {shlex.join(program)}"]
        return program, (f"this OS gives no private mount namespace: only arguments naming {CONTAINER_ROOT}/... "
                         f"are mapped; a script that hardcodes {CONTAINER_ROOT} paths in its code will not find them")
    mounted = host_path(job_root, CONTAINER_ROOT)
    script = f"mkdir -p {CONTAINER_ROOT} && mount --bind {shlex.quote(str(mounted))} {CONTAINER_ROOT}"
    if etc_hosts is not None:
        script += f" && mount --bind {shlex.quote(str(etc_hosts))} /etc/hosts"
    if workdir:
        script += f" && cd {shlex.quote(workdir)}"
    script += f" && exec {shlex.join(program)}"
    return [shutil.which("unshare") or "unshare", "--mount", "--map-root-user", "sh", "-c", script], None


@dataclass
class JobRun:
    """How a job program ended: exit code, its last output lines, and whether it ran out of time."""

    exit_code: int
    tail: list[str]
    timed_out: bool = False

    @property
    def last_line(self) -> str:
        """The last non-empty line the program printed."""
        return next((line for line in reversed(self.tail) if line.strip()), "")


PID_FILE = "job.pid"
JOB_DIR_VARIABLE = "PIPELINES_LOCAL_JOB_DIR"  # marks a job's processes, so that a recycled pid is never stopped


def run_logged(command: list[str], env: dict[str, str], cwd: Path, log: Callable[[str], None],
               log_file: Path, max_runtime_seconds: float | None = None) -> JobRun:
    """Run ``command`` in its own process group, streaming each output line to ``log`` and ``log_file``.

    After ``max_runtime_seconds`` the whole group is killed, as SageMaker stops a job at its
    MaxRuntimeInSeconds. The group id is kept in ``cwd/job.pid`` so that a later run can stop
    programs left behind by an engine that was killed (``kill_leftovers``).
    """
    tail: list[str] = []
    expired = threading.Event()
    known = (str(cwd.resolve()),)  # the job's own folder is named in its lines and is no secret
    with open(log_file, "a", encoding="utf-8") as sink:
        # no AWS setting of this process (a profile, real credentials, an endpoint) reaches a job program
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        marked = {**inherited, **env, JOB_DIR_VARIABLE: str(cwd.resolve())}
        process = subprocess.Popen(command, env=marked, cwd=cwd, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
        (cwd / PID_FILE).write_text(str(process.pid))
        timer = None
        if max_runtime_seconds is not None:
            timer = threading.Timer(max_runtime_seconds, lambda: (expired.set(), _kill_group(process.pid)))
            timer.daemon = True
            timer.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                line = redact(line.rstrip("\n"), known)
                sink.write(line + "\n")
                log(line)
                tail = (tail + [line])[-5:]
            code = process.wait()
        except BaseException:
            _kill_group(process.pid)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        (cwd / PID_FILE).unlink(missing_ok=True)
    return JobRun(code, tail, expired.is_set())


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_leftovers(job_dir: Path) -> bool:
    """Stop what is left of a job program an earlier, killed engine started in ``job_dir``.

    Only processes of the recorded process group that were started for that job directory are
    targeted, so a recycled process id is never hit. Returns True if something was stopped.
    """
    stopped = False
    for pid_file in [job_dir / PID_FILE, *sorted(job_dir.glob(f"hosts/*/{PID_FILE}"))]:  # one per local host
        try:
            pgid = int(pid_file.read_text())
        except (OSError, ValueError):
            continue
        members = [pid for pid in _group_members(pgid) if _started_in(pid, pid_file.parent)]
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        stopped = stopped or bool(members)
    return stopped


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:  # fields after the command name: state, ppid, pgrp, ...
            members.append(int(stat.parent.name))
    return members


def _started_in(pid: int, directory: Path) -> bool:
    """True if the process was started by ``run_logged`` for ``directory`` (its environment says so)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"{JOB_DIR_VARIABLE}={directory.resolve()}".encode() in environ
