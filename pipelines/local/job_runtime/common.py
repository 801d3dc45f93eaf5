"""What both runtime backends share: the job's interpreter, and a launcher that dies with the engine."""

from __future__ import annotations

import functools
import shutil
import sys
from typing import Sequence

from pipelines.local.job_runtime.spec import PYTHON_COMMANDS


def interpreter() -> str:
    """The interpreter job programs run with (``python``/``python3`` in an entrypoint)."""
    return sys.executable


def interpreter_command(command: Sequence[str]) -> list[str]:
    """``command`` with a leading ``python``/``python3`` replaced by the job's interpreter."""
    return [interpreter() if i == 0 and part in PYTHON_COMMANDS else part for i, part in enumerate(command)]


@functools.lru_cache(maxsize=1)
def launcher() -> list[str]:
    """A prefix that makes the started program die when the engine's thread that started it dies (a killed
    engine leaves no job running); empty where util-linux's ``setpriv`` is missing."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL"] if setpriv else []
