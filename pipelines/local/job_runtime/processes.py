"""Starting a launched job program, streaming its output, stopping it and whatever it left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Mapping, Sequence

from pipelines.credentials import redact
from pipelines.local import safe_files

PID_FILE = "job.pid"
JOB_DIR_VARIABLE = "PIPELINES_LOCAL_JOB_DIR"  # marks a job's processes, so that a recycled pid is never stopped


@dataclass(frozen=True)
class Launch:
    """The host command, environment and folder that start one job program (a backend's answer)."""

    argv: Sequence[str]
    environment: Mapping[str, str]
    cwd: Path


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


def popen(launch: Launch, stdout: int | IO | None) -> subprocess.Popen:
    """Start a launch in its own session (no terminal: nothing it does reaches the user's), marked with its
    folder; its output goes to ``stdout`` (None: its output and errors go where this process's go)."""
    environment = {**launch.environment, JOB_DIR_VARIABLE: str(launch.cwd.resolve())}
    return subprocess.Popen(list(launch.argv), env=environment, cwd=launch.cwd, stdin=subprocess.DEVNULL,
                            stdout=stdout, stderr=None if stdout is None else subprocess.STDOUT,
                            start_new_session=True)


def run_logged(launch: Launch, log: Callable[[str], None], log_file: Path,
               max_runtime_seconds: float | None = None) -> JobRun:
    """Run a launch, streaming each output line to ``log`` and ``log_file``.

    After ``max_runtime_seconds`` the whole process group is killed, as SageMaker stops a job at its
    MaxRuntimeInSeconds. The group id is kept in ``cwd/job.pid`` so that a later run can stop
    programs left behind by an engine that was killed (``kill_leftovers``).
    """
    tail: list[str] = []
    expired = threading.Event()
    known = (str(launch.cwd.resolve()),)  # the job's own folder is named in its lines and is no secret
    with safe_files.open_append(log_file.parent, log_file) as sink:  # a link planted at the log is refused
        process = popen(launch, subprocess.PIPE)
        safe_files.write_text(launch.cwd, launch.cwd / PID_FILE, str(process.pid))
        timer = None
        if max_runtime_seconds is not None:
            timer = threading.Timer(max_runtime_seconds, lambda: (expired.set(), kill_group(process.pid)))
            timer.daemon = True
            timer.start()
        try:
            assert process.stdout is not None
            for raw in iter(process.stdout.readline, b""):
                line = redact(raw.decode("utf-8", errors="replace").rstrip("\n"), known)
                sink.write((line + "\n").encode("utf-8"))
                log(line)
                tail = (tail + [line])[-5:]
            code = process.wait()
        except BaseException:
            kill_group(process.pid)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        (launch.cwd / PID_FILE).unlink(missing_ok=True)
    return JobRun(code, tail, expired.is_set())


def kill_group(pgid: int) -> None:
    """SIGKILL a process group, if it is still there."""
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
    # one per local host, and per host of a tuning job's training jobs
    for pid_file in [job_dir / PID_FILE, *sorted(job_dir.glob(f"hosts/*/{PID_FILE}")),
                     *sorted(job_dir.glob(f"trials/*/{PID_FILE}")), *sorted(job_dir.glob(f"trials/*/hosts/*/{PID_FILE}"))]:
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


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name, which may hold spaces and ')' (state is [0], start time in clock ticks
    after boot [19]); [] if there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _group_members(pgid: int) -> list[int]:
    pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    return [pid for pid in pids if (fields := stat_fields(pid)) and int(fields[2]) == pgid]  # [2]: the group


def _started_in(pid: int, directory: Path) -> bool:
    """True if the process was started by ``popen`` for ``directory`` (its environment says so)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"{JOB_DIR_VARIABLE}={directory.resolve()}".encode() in environ
