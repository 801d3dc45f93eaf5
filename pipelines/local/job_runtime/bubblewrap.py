"""Each job host in a container of its own, made with bubblewrap (``bwrap``), as its container is on SageMaker.

The host gets a private, writable, throwaway ``/`` (a tmpfs) holding the system directories, the
job's interpreter and libraries read-only; ``/opt/ml`` bound to its job folder; a private ``/tmp``;
the working directory ``/`` (or the image's); hostname ``algo-N`` and an /etc/hosts naming the job's
hosts; its own PID, UTS and IPC namespaces; and it dies with the engine. Nothing else of this machine
(home folders, the project, the store, other jobs) is visible. With network isolation it is in a
private network namespace, shared only with the other hosts of its job.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from pipelines.local.job_runtime.common import (engine_package_folders, interpreter, interpreter_command, launcher,
                                               program_folders)
from pipelines.local.job_runtime.processes import JOB_DIR_VARIABLE, Launch
from pipelines.local.job_runtime.spec import CONTAINER_ROOT, JobSpec, Network, etc_hosts

INSTALL_HINT = ("install it with `sudo apt-get install bubblewrap` (Debian, Ubuntu) or "
                "`sudo dnf install bubblewrap` (Fedora)")
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TOP_LEVEL = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")  # symbolic links into /usr on merged-/usr systems
# what a program needs of /etc: users, libraries, name service, certificates, time zone, and R's configuration
# (Debian keeps R_HOME/etc there, for the R image's programs); not the rest
ETC_ENTRIES = ("alternatives", "ca-certificates", "ca-certificates.conf", "debian_version", "fonts", "gai.conf", "group",
               "host.conf", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "mime.types",
               "nsswitch.conf", "os-release", "passwd", "protocols", "R", "resolv.conf", "services", "ssl", "timezone")


@functools.lru_cache(maxsize=1)
def interpreter_paths() -> tuple[str, ...]:
    """The job interpreter's folders outside /usr: its installation and its virtualenv (the same for every
    job of this process)."""
    found = []
    for prefix in (sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix,
                   str(Path(interpreter()).resolve().parent.parent)):
        real = os.path.realpath(prefix)
        if not real.startswith("/usr/") and real != "/usr" and real not in found:
            found.append(real)
    return tuple(found)


def environment_interpreter_paths(spec: JobSpec) -> tuple[str, ...]:
    """The installation folders of the Pythons that the job's environments were made with (each environment's
    ``bin/python``, its links followed, in its installation's ``bin``), where they are neither under /usr nor
    among the engine interpreter's folders: an image's Python found on this machine (pyenv's, uv's). Never ``/``
    itself (a Python in /bin where /usr is not merged), which would show the job the whole machine."""
    found: list[str] = []
    for environment in (*([spec.python_env] if spec.python_env is not None else []), *spec.python_layers):
        prefix = os.path.dirname(os.path.dirname(os.path.realpath(Path(environment) / "bin" / "python")))
        if prefix != "/" and os.path.isdir(prefix) and not _within(prefix, ("/usr", *interpreter_paths(), *found)):
            found.append(prefix)
    return tuple(found)


def _within(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


@functools.lru_cache(maxsize=1)
def engine_code_paths() -> tuple[str, ...]:
    """Where the engine's packages live, when they are not inside the interpreter's folders (an editable install)."""
    return tuple(folder for folder in engine_package_folders() if not _within(folder, interpreter_paths()))


class Bubblewrap:
    """The job runtime on bubblewrap."""

    sandboxed = True
    notice = None

    def __init__(self, bwrap: str):
        self.bwrap = bwrap

    def launch(self, spec: JobSpec) -> Launch:
        """The command, environment and folder for ``spec``."""
        spec.opt_ml.mkdir(parents=True, exist_ok=True)
        system = spec.work_dir / "etc"
        system.mkdir(exist_ok=True)
        (system / "hosts").write_text(etc_hosts(spec.hosts))
        (system / "hostname").write_text(spec.hostname + "\n")
        args = ["--tmpfs", "/", "--ro-bind", "/usr", "/usr"]
        for name in TOP_LEVEL:
            path = Path("/") / name
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                args += ["--ro-bind", str(path), str(path)]
        args += ["--ro-bind-try", "/sys", "/sys", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                 "--dir", "/var/tmp", "--dir", "/run", "--dir", "/root"]
        for name in ETC_ENTRIES:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        args += ["--ro-bind", str(system / "hosts"), "/etc/hosts",
                 "--ro-bind", str(system / "hostname"), "/etc/hostname"]
        # after the tmpfs on /tmp: a virtualenv or store under /tmp would be hidden otherwise
        for path in (*interpreter_paths(), *environment_interpreter_paths(spec),
                     *(engine_code_paths() if spec.engine_code else ())):
            args += ["--ro-bind", path, path]
        if spec.python_env is not None:
            args += ["--bind" if spec.python_writable else "--ro-bind", str(spec.python_env), str(spec.python_env)]
        for environment in spec.python_layers:
            args += ["--ro-bind", str(environment), str(environment)]
        for host, container in spec.image_files:
            args += ["--ro-bind", str(host), container]
        for folder in spec.engine_dirs:
            args += ["--bind", str(folder), str(folder)]
        args += ["--bind", str(spec.opt_ml), CONTAINER_ROOT, "--dir", spec.workdir, "--chdir", spec.workdir,
                 "--unshare-pid", "--unshare-uts", "--unshare-ipc", "--unshare-cgroup-try",
                 "--hostname", spec.hostname, "--die-with-parent", "--unsetenv", JOB_DIR_VARIABLE]
        if spec.network.isolated and spec.network.namespace_pid is None:
            args.append("--unshare-net")
        environment = {"HOME": "/root", "LANG": "C.UTF-8", "HOSTNAME": spec.hostname, **spec.environment,
                       "PATH": ":".join([*program_folders(spec), CONTAINER_PATH])}
        argv = [*launcher(), *_join(spec.network), self.bwrap, *args, "--", *interpreter_command(spec)]
        return Launch(argv, environment, spec.work_dir)

    @contextlib.contextmanager
    def job_network(self, isolated: bool, host_count: int) -> Iterator[Network]:
        """The network for the hosts of one job: this machine's; or, isolated, a private one that all the
        job's hosts share (held by a sleeping process until the job ends)."""
        if not isolated:
            yield Network()
            return
        if host_count == 1:
            yield Network(isolated=True)
            return
        holder, pid = _namespace_holder(self.bwrap)
        try:
            yield Network(isolated=True, namespace_pid=pid)
        finally:
            holder.kill()
            holder.wait()


def _join(network: Network) -> list[str]:
    """The prefix that puts a host into its job's shared network namespace."""
    if network.namespace_pid is None:
        return []
    nsenter = shutil.which("nsenter") or "nsenter"
    if os.geteuid() == 0:
        return [nsenter, f"--net=/proc/{network.namespace_pid}/ns/net", "--"]
    # unprivileged, the namespace belongs to the holder's user namespace: enter both
    return [nsenter, "-t", str(network.namespace_pid), "-U", "-n", "--preserve-credentials", "--"]


def _namespace_holder(bwrap: str) -> tuple[subprocess.Popen, int]:
    read, write = os.pipe()
    holder = subprocess.Popen([*launcher(), bwrap, "--ro-bind", "/", "/", "--unshare-net", "--die-with-parent",
                               "--info-fd", str(write), "--", "sleep", "infinity"], pass_fds=(write,),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    os.close(write)
    with os.fdopen(read, "rb") as info:
        raw = info.read()
    try:
        return holder, int(json.loads(raw)["child-pid"])
    except (ValueError, KeyError, TypeError):
        holder.kill()
        _, errors = holder.communicate()
        reason = errors.decode(errors="replace").strip()
        raise OSError(f"bubblewrap could not create the job's network: {reason}") from None


def unusable_reason(bwrap: str | None) -> str | None:
    """Why bubblewrap cannot run jobs here, or None: it runs a program in a sandbox as jobs get it."""
    if platform.system() != "Linux":
        return f"bubblewrap needs Linux (this is {platform.system()})"
    if bwrap is None:
        return f"bubblewrap not found; {INSTALL_HINT}"
    with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as folder:
        spec = JobSpec(["python3", "-S", "-c", "open('/opt/ml/probe', 'w').close()"], Path(folder) / "opt-ml",
                       Path(folder), network=Network(isolated=True))
        launch = Bubblewrap(bwrap).launch(spec)
        try:
            done = subprocess.run(list(launch.argv), env=dict(launch.environment), cwd=launch.cwd,
                                  capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap could not start a job: {exc}"
        if done.returncode != 0 or not (spec.opt_ml / "probe").exists():
            last = (done.stderr.decode(errors="replace").strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            return f"bubblewrap cannot create a job's namespaces here ({last})"
    return None
