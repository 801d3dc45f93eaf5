"""The cache that holds job environments: where it is, what a built environment is, and how one is built
safely (one build at a time across processes, used only once finished, removed if it fails)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import venv
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator

from pipelines.errors import EnvironmentBuildError
from pipelines.local.environments.interpreters import ENGINE_MINOR

COMPLETE = ".complete"  # written last: what it holds describes the finished environment
BUILD_VERSION = "5"  # bump when the layout of an environment changes
SITE_PACKAGES = "lib/pythonX.Y/site-packages"  # where a virtualenv's libraries are, X.Y its interpreter's version


def default_cache() -> Path:
    """Where environments are cached when no setting says: under ``XDG_CACHE_HOME`` (else ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sagemaker-pipelines-local" / "environments"


def site_packages_of(root: Path) -> Path | None:
    """The ``site-packages`` folder of the virtualenv at ``root``, for the Python it was made with
    (``lib/python3.9/site-packages``); None if it has none, or several."""
    found = list(root.glob("lib/python*/site-packages"))
    return found[0] if len(found) == 1 and found[0].is_dir() else None


@dataclass(frozen=True)
class Environment:
    """A built environment: a virtualenv (its interpreter is ``bin/python``, of the Python it was made with),
    the environment whose libraries it sees after its own (``base``), and what its build recorded
    (``manifest``)."""

    root: Path
    base: "Environment | None" = None
    manifest: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def layers(self) -> tuple[Path, ...]:
        """Every folder the interpreter reads: this environment's and those it derives from."""
        return (self.root, *(self.base.layers if self.base else ()))

    @property
    def site_packages(self) -> Path:
        """Its own libraries' folder; EnvironmentBuildError for a folder that is no virtualenv of one Python."""
        found = site_packages_of(self.root)
        if found is None:
            raise EnvironmentBuildError(f"{self.root}: it has no single {SITE_PACKAGES}, as a virtualenv has")
        return found

    @property
    def python(self) -> str:
        """The minor version of the Python it was made with (``3.9``), as its ``site-packages`` folder says."""
        return self.site_packages.parent.name.removeprefix("python")

    @property
    def interpreter(self) -> str:
        """The program its ``bin/python`` starts, its links followed: the Python it was made with."""
        return os.path.realpath(self.root / "bin" / "python")

    @property
    def image(self) -> str | None:
        """The image (``repository:version``) whose libraries this environment's chain starts from; None if it
        derives from this interpreter's."""
        bottom = self
        while bottom.base is not None:
            bottom = bottom.base
        return bottom.manifest.get("image")

    def installed_version(self, distribution: str) -> str | None:
        """The version of ``distribution`` its interpreter imports: the first of its layers that has it, or None."""
        wanted = distribution.lower().replace("_", "-")
        for layer in self.layers:
            site = site_packages_of(layer)
            for found in metadata.distributions(path=[str(site)]) if site is not None else ():
                if (found.metadata["Name"] or "").lower().replace("_", "-") == wanted:
                    return found.version
        return None


def finished(target: Path) -> dict[str, Any] | None:
    """The manifest of a finished environment at ``target`` that can run; None if there is none, it is
    unfinished, or it is ``incomplete``."""
    try:
        manifest = json.loads((target / COMPLETE).read_text())
    except (OSError, ValueError):
        return None
    return manifest if incomplete(target) is None else None


def incomplete(target: Path) -> str | None:
    """Why the environment at ``target`` cannot run (its interpreter is gone, its folder is partial), or None.
    Only links and files are looked at: no interpreter is started."""
    python = target / "bin" / "python"
    if python.is_symlink() and not python.exists():
        return f"bin/python links to {os.readlink(python)}, which is gone"
    if not python.is_file() or not os.access(python, os.X_OK):
        return "it has no bin/python that can run"
    if not (target / "pyvenv.cfg").exists():
        return "it has no pyvenv.cfg"
    if site_packages_of(target) is None:
        return f"it has no {SITE_PACKAGES}"
    return None


@contextlib.contextmanager
def building(cache: Path, target: Path, what: str, log: Callable[[str], None]) -> Iterator[bool]:
    """Hold the lock of ``target``'s build; yields True if it still has to be built (another process may
    have finished it while this one waited; a finished one that is ``incomplete`` is built again, and the log
    says why). EnvironmentBuildError if the cache cannot be written."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        handle = open(cache / f"{target.name}.lock", "w")
    except OSError as exc:
        raise EnvironmentBuildError(f"{what}: the environments cache {cache} cannot be written "
                                    f"({exc.strerror or exc}); set environments_cache (--environments-cache DIR) "
                                    "to a folder you can write") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            broken = incomplete(target) if (target / COMPLETE).is_file() else None
            if broken is not None:
                log(f"{what}: the cached environment {target} is incomplete ({broken}); rebuilding it")
            yield finished(target) is None
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def create(target: Path, build: Callable[[Environment], dict[str, Any]], base: Environment | None = None,
           python: str | None = None) -> Environment:
    """A new virtualenv at ``target`` (what an interrupted build left there is removed first) made with
    ``python`` (None: ``base``'s interpreter, or this one without a base), filled by ``build``, which returns
    its manifest; removed again if ``build`` fails."""
    shutil.rmtree(target, ignore_errors=True)
    try:
        _virtualenv(target, python or (base.interpreter if base else None))
        if site_packages_of(target) is None:  # a layout this module does not know: say so, never guess
            raise EnvironmentBuildError(f"{target}: the new virtualenv has no {SITE_PACKAGES}")
        environment = Environment(target, base)
        manifest = build(environment)
        (target / COMPLETE).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        return Environment(target, base, manifest)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def derived(cache: Path, kind: str, content: bytes, base: Environment | None, name: str,
            said: tuple[str, str], build: Callable[[Environment], dict[str, Any]],
            log: Callable[[str], None]) -> Environment:
    """An environment derived from ``base`` (None: this interpreter's libraries), on the base's Python, built
    once per (``kind``, ``content``, base, Python) in ``cache/<kind>-<key>``: it sees the base's libraries
    after its own (a ``.pth`` line), then ``build`` fills it. ``said``: what the log says while building it and
    once it is there (``"installing into"``, ``"installed in"``)."""
    below = str(base.root) if base else sys.prefix
    digest = hashlib.sha256(b"\0".join([BUILD_VERSION.encode(), sys.version.encode(), below.encode(),
                                        kind.encode(), content]))
    target = cache / f"{kind}-{digest.hexdigest()[:20]}"
    if finished(target) is None:
        with building(cache, target, name, log) as needed:
            if needed:
                log(f"{name}: {said[0]} a new environment {target} (once; later runs reuse it)")
                create(target, lambda environment: build(_sees_base(environment)), base)
    log(f"{name}: {said[1]} the cached environment {target}")
    return Environment(target, base, finished(target) or {})


def _sees_base(environment: Environment) -> Environment:
    below = environment.base.site_packages if environment.base else Path(sysconfig.get_paths()["purelib"])
    # after the environment's own packages, the base's (and what its .pth files add)
    (environment.site_packages / "zz-base-libraries.pth").write_text(f"import site; site.addsitedir({str(below)!r})\n")
    return environment


def pip_command(environment: Environment) -> list[str]:
    """The start of a pip command that installs into ``environment``: this interpreter's pip aimed at it
    (``--python``) when it runs on this interpreter's minor version of Python, else the pip its own Python
    imports (an image environment's): this interpreter's pip may not support an older Python."""
    python = str(environment.root / "bin" / "python")
    if environment.python == ENGINE_MINOR:
        return [sys.executable, "-m", "pip", "--python", python]
    return [python, "-m", "pip"]


def stream(command: list[str], log: Callable[[str], None], prefix: str, cwd: Path | None = None,
           environment: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """Run an installer, each output line logged with ``prefix``; its exit code and its last lines."""
    process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, errors="replace", env=environment)
    assert process.stdout is not None
    tail: list[str] = []
    for line in process.stdout:
        line = line.rstrip()
        log(f"{prefix}{line}")
        if line.strip():
            tail = (tail + [line.strip()])[-12:]
    return process.wait(), tail


def writable_layer(layers: Path, base: Environment | None) -> Environment:
    """A job's own environment, made anew in ``layers``: a virtualenv on ``base``'s Python that sees its
    libraries (None: this interpreter's) after its own, so that the job's ``pip install`` (``python -m pip``, or
    ``pip`` on the PATH) writes there, as it writes to a container's layer, while the cached ``base`` stays
    unchanged. The caller removes it when the job ends; those of engines that died are removed here."""
    layers.mkdir(parents=True, exist_ok=True)
    for left in layers.glob("layer-*"):
        if not _alive(left.name.split("-")[1]):
            shutil.rmtree(left, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=f"layer-{os.getpid()}-", dir=layers))
    _virtualenv(folder, base.interpreter if base else None)
    layer = _sees_base(Environment(folder, base))
    for name in ("pip", "pip3"):  # found through PATH inside the job: the layer's interpreter runs pip
        script = folder / "bin" / name
        script.write_text('#!/bin/sh\nexec "$(dirname "$0")/python" -m pip "$@"\n')
        script.chmod(0o755)
    return layer


def _virtualenv(target: Path, python: str | None) -> None:
    """A virtualenv without pip at ``target``, its ``bin/python`` a link to ``python`` (None: this interpreter);
    EnvironmentBuildError with that Python's reason if it cannot make one."""
    if python is None or os.path.realpath(python) == os.path.realpath(sys.executable):
        venv.EnvBuilder(with_pip=False, symlinks=True).create(target)
        return
    made = subprocess.run([python, "-I", "-m", "venv", "--without-pip", "--symlinks", str(target)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if made.returncode != 0:
        reason = (made.stderr.strip().splitlines() or [f"exit code {made.returncode}"])[-1]
        raise EnvironmentBuildError(f"{target}: {python} could not make a virtualenv ({reason})")


def _alive(pid: str) -> bool:
    return pid.isdigit() and Path(f"/proc/{pid}").exists()
