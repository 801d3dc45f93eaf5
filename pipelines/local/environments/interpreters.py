"""The Pythons installed on this machine that an environment can be made with: an interpreter of a given minor
version (``3.10``), found as uv finds installed interpreters (never downloading one), else as ``python3.10`` on
the ``PATH``, and taken only once it has said, when started, that it is that version. The engine's own minor
version is this interpreter, found without starting anything."""

from __future__ import annotations

import functools
import json
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Iterator

import uv

ENGINE_MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"
# what a candidate is asked when started: its version, its build (``sys.version``), its installation's prefix,
# its program
_QUESTION = ("import json, sys; print(json.dumps([list(sys.version_info[:3]), sys.version, sys.base_prefix, "
             "sys.executable]))")
_TIMEOUT = 60  # seconds for uv's search or one candidate's answer


@dataclass(frozen=True)
class Interpreter:
    """An installed Python: how to start it (``path``), its ``version`` (``3.10.13``), its build as
    ``sys.version`` says it (which tells apart two installations of one version) and its installation's prefix
    (``sys.base_prefix``: the same for every virtualenv made from it, so that an environment keyed by it is
    reused when the engine's own virtualenv is made anew, as in every fresh clone)."""

    path: str
    version: str
    build: str
    prefix: str

    @property
    def minor(self) -> str:
        """``3.10`` for Python 3.10.13."""
        return minor_of(self.version)


def minor_of(version: str) -> str:
    """The minor version (``3.8``) of a Python version (``3.8.13``, or ``3.8``)."""
    return ".".join(version.split(".")[:2])


def this() -> Interpreter:
    """The interpreter this engine runs on."""
    return Interpreter(sys.executable, platform.python_version(), sys.version, sys.base_prefix)


@functools.lru_cache(maxsize=None)
def find(minor: str) -> Interpreter | None:
    """An interpreter of ``minor`` installed here (this one for the engine's own minor version), or None; looked
    for once per process."""
    return this() if minor == ENGINE_MINOR else installed(minor)


def installed(minor: str) -> Interpreter | None:
    """An interpreter of ``minor`` installed here, looked for now: uv's choice among the installed ones (no
    virtualenv, no download), else ``python<minor>`` on the ``PATH``; each taken only if it runs and says it is
    ``minor``. None if there is none."""
    for candidate in _candidates(minor):
        found = probe(candidate)
        if found is not None and found.minor == minor:
            return found
    return None


def _candidates(minor: str) -> Iterator[str]:
    try:
        done = subprocess.run([uv.find_uv_bin(), "python", "find", "--system", "--no-python-downloads", minor],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=_TIMEOUT)
        if done.returncode == 0 and done.stdout.strip():
            yield done.stdout.strip().splitlines()[-1]
    except (OSError, subprocess.TimeoutExpired):  # uv cannot search here: the PATH still can be
        pass
    on_path = shutil.which(f"python{minor}")
    if on_path is not None:
        yield on_path


def probe(path: str) -> Interpreter | None:
    """The interpreter at ``path`` as it describes itself when started (isolated from this machine's Python
    settings), or None if it does not run or answer."""
    try:
        done = subprocess.run([path, "-I", "-c", _QUESTION], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=_TIMEOUT)
        version, build, prefix, executable = json.loads(done.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError, TypeError):
        return None
    if done.returncode != 0:
        return None
    # its own program rather than a version manager's shim that started it
    return Interpreter(executable or path, ".".join(map(str, version)), build, prefix)
