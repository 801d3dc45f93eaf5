"""Job environments derived from this interpreter's: its libraries plus a job's ``requirements.txt``, installed
with pip as the SageMaker training toolkit installs them, built once per content and cached outside the store.

An environment is a virtualenv whose ``site-packages`` first holds what the requirements install and then
sees the engine's own libraries (a ``.pth`` line): a requirement the engine already satisfies installs
nothing. The cache (``~/.cache/sagemaker-pipelines-local/environments`` unless ``XDG_CACHE_HOME`` or the
``environments_cache`` setting says otherwise) is shared by every store and run; an environment is used
only once its build finished (``.complete``), and a failed build is removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from pipelines.errors import EnvironmentBuildError

COMPLETE = ".complete"
BUILD_VERSION = "1"  # bump when the layout of an environment changes


def default_cache() -> Path:
    """Where environments are cached when no setting says: under ``XDG_CACHE_HOME`` (else ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sagemaker-pipelines-local" / "environments"


@dataclass(frozen=True)
class Environment:
    """A built environment: its folder (a virtualenv; its interpreter is ``bin/python``)."""

    root: Path


class Environments:
    """The cache of derived environments in ``cache`` (None: ``default_cache()`` when first used)."""

    def __init__(self, cache: Path | None = None):
        self._cache = cache

    @property
    def cache(self) -> Path:
        return self._cache or default_cache()

    def with_requirements(self, requirements: Path, log: Callable[[str], None]) -> Environment:
        """This interpreter's libraries plus ``requirements`` (pip, run in the file's folder, so that relative
        paths in it resolve); EnvironmentBuildError naming the file and pip's reason if it cannot be built."""
        content = requirements.read_bytes()
        key = hashlib.sha256(b"\0".join([BUILD_VERSION.encode(), sys.version.encode(), sys.prefix.encode(),
                                         content])).hexdigest()[:20]
        target = self.cache / f"requirements-{key}"
        if (target / COMPLETE).is_file():
            log(f"{requirements.name}: installed in the cached environment {target}")
            return Environment(target)
        try:
            self.cache.mkdir(parents=True, exist_ok=True)
            with _locked(self.cache / f"{target.name}.lock"):
                if not (target / COMPLETE).is_file():  # another run may have built it while we waited
                    _build(target, requirements, log)
        except OSError as exc:
            raise EnvironmentBuildError(f"{requirements.name}: the environments cache {self.cache} cannot be "
                                        f"written ({exc.strerror or exc}); set environments_cache "
                                        "(--environments-cache DIR) to a folder you can write") from None
        return Environment(target)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One build of an environment at a time, across processes."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(target: Path, requirements: Path, log: Callable[[str], None]) -> None:
    shutil.rmtree(target, ignore_errors=True)  # what an interrupted build left: never used, since not complete
    log(f"{requirements.name}: installing into a new environment {target} (once; later runs reuse it)")
    try:
        venv.EnvBuilder(with_pip=False, symlinks=True).create(target)
        site_packages = Path(subprocess.run(
            [str(target / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True).stdout.strip())
        engine_site = sysconfig.get_paths()["purelib"]
        # after the environment's own packages, the engine's (and what their .pth files add)
        (site_packages / "zz-engine-libraries.pth").write_text(f"import site; site.addsitedir({engine_site!r})\n")
        command = [sys.executable, "-m", "pip", "--python", str(target / "bin" / "python"), "install",
                   "--no-input", "--disable-pip-version-check", "--progress-bar", "off", "-r", str(requirements)]
        process = subprocess.Popen(command, cwd=requirements.parent, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, errors="replace")
        assert process.stdout is not None
        tail: list[str] = []
        for line in process.stdout:
            line = line.rstrip()
            log(f"pip: {line}")
            tail = (tail + [line])[-8:] if line.strip() else tail
        if process.wait() != 0:
            reason = next((t for t in reversed(tail) if t.startswith("ERROR")), tail[-1] if tail else "no output")
            raise EnvironmentBuildError(f"{requirements.name}: pip could not install it ({reason.strip()}); "
                                        "fix the requirement and run again")
        (target / COMPLETE).write_text(requirements.read_text(errors="replace"))
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
