"""The runner for machines without bubblewrap: the program runs as the user, in its job folder.

``/opt/ml`` paths in its arguments and environment are mapped into the job folder; where the OS gives
an unprivileged private mount namespace (``unshare``), the folder is also bind-mounted on ``/opt/ml``
(and the job's /etc/hosts on /etc/hosts) so that scripts that hardcode those paths work unchanged.
Nothing else of a container is given: the user's files are open to the program.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import subprocess
import tempfile
from typing import Iterator

from pipelines.local.job_runtime.common import interpreter_command, launcher, program_folders
from pipelines.local.job_runtime.processes import Launch
from pipelines.local.job_runtime.spec import CONTAINER_ROOT, HOST_NETWORK, JobSpec, Network, etc_hosts

NOT_ISOLATED = "jobs are not isolated"


def _in_opt_ml(path: str) -> bool:
    return path == CONTAINER_ROOT or path.startswith(CONTAINER_ROOT + "/")


def rewrite(value: str, spec: JobSpec) -> str:
    """A value with a leading /opt/ml path mapped into the job folder."""
    if _in_opt_ml(value):
        return str(spec.opt_ml / value[len(CONTAINER_ROOT):].lstrip("/"))
    return value


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


class Unsandboxed:
    """Today's runner, said to be so: ``reason`` is why bubblewrap could not be used."""

    sandboxed = False

    def __init__(self, reason: str):
        self.reason = reason

    @property
    def notice(self) -> str:
        """The line a run prints once, and each job's not-enforced report repeats."""
        return f"{NOT_ISOLATED}: {self.reason}"

    def launch(self, spec: JobSpec) -> Launch:
        """The command, environment and folder for ``spec``."""
        program = [rewrite(part, spec) for part in interpreter_command(spec)]
        # no AWS setting of this process (a profile, real credentials, an endpoint) reaches a job program
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        environment = {**inherited, **{k: rewrite(v, spec) for k, v in spec.environment.items()}}
        environment["PATH"] = os.pathsep.join([*program_folders(spec), inherited.get("PATH", os.defpath)])
        in_opt_ml = _in_opt_ml(spec.workdir)
        if not mount_namespace_available():
            if in_opt_ml:
                program = ["sh", "-c", f"cd {shlex.quote(rewrite(spec.workdir, spec))} && exec {shlex.join(program)}"]
            return Launch(launcher() + program, environment, spec.work_dir)
        spec.opt_ml.mkdir(parents=True, exist_ok=True)
        script = f"mkdir -p {CONTAINER_ROOT} && mount --bind {shlex.quote(str(spec.opt_ml))} {CONTAINER_ROOT}"
        if len(spec.hosts) > 1:
            hosts_file = spec.work_dir / "etc-hosts"
            hosts_file.write_text(etc_hosts(spec.hosts))
            script += f" && mount --bind {shlex.quote(str(hosts_file))} /etc/hosts"
        if in_opt_ml:
            script += f" && cd {shlex.quote(spec.workdir)}"
        script += f" && exec {shlex.join(program)}"
        unshare = shutil.which("unshare") or "unshare"
        return Launch(launcher() + [unshare, "--mount", "--map-root-user", "sh", "-c", script], environment,
                      spec.work_dir)

    @contextlib.contextmanager
    def job_network(self, isolated: bool, host_count: int) -> Iterator[Network]:
        """This machine's network, whatever the job asks (its network isolation is reported as not enforced)."""
        yield HOST_NETWORK
