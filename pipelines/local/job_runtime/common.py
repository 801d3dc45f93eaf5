"""What both runtime backends share: the job's interpreter, and a launcher that dies with the engine."""

from __future__ import annotations

import functools
import shutil
import sys

from pipelines.local.job_runtime.spec import PYTHON_COMMANDS, JobSpec


def interpreter(spec: JobSpec | None = None) -> str:
    """The interpreter a job program runs with (``python``/``python3`` in an entrypoint): its environment's,
    else the engine's."""
    if spec is not None and spec.python_env is not None:
        return str(spec.python_env / "bin" / "python")
    return sys.executable


def interpreter_command(spec: JobSpec) -> list[str]:
    """The spec's command with a leading ``python``/``python3`` replaced by the job's interpreter."""
    return [interpreter(spec) if i == 0 and part in PYTHON_COMMANDS else part for i, part in enumerate(spec.command)]


@functools.lru_cache(maxsize=1)
def launcher() -> list[str]:
    """A prefix that makes the started program die when the engine's thread that started it dies (a killed
    engine leaves no job running); empty where util-linux's ``setpriv`` is missing."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL"] if setpriv else []
