"""A job's ``requirements.txt`` installed with pip, as the SageMaker training toolkit installs it, into an
environment derived from the job's base: its image's environment, or this interpreter's libraries.

The derived virtualenv's ``site-packages`` first holds what the requirements install and then sees the
base's libraries (a ``.pth`` line), so a requirement the base already satisfies installs nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from pipelines.errors import EnvironmentBuildError
from pipelines.local.environments.cache import Environment, derived, stream


def with_requirements(cache: Path, requirements: Path, base: Environment | None,
                      log: Callable[[str], None]) -> Environment:
    """``base`` (None: this interpreter's libraries) plus ``requirements``, pip run in the file's folder so
    that relative paths in it resolve; EnvironmentBuildError naming the file and pip's reason."""
    return derived(cache, "requirements", requirements.read_bytes(), base, requirements.name,
                   ("installing into", "installed in"), lambda environment: _install(environment, requirements, log),
                   log)


def _install(environment: Environment, requirements: Path, log: Callable[[str], None]) -> dict[str, Any]:
    command = [sys.executable, "-m", "pip", "--python", str(environment.root / "bin" / "python"), "install",
               "--no-input", "--disable-pip-version-check", "--progress-bar", "off", "-r", str(requirements)]
    code, tail = stream(command, log, "pip: ", cwd=requirements.parent)
    if code != 0:
        reason = next((t for t in reversed(tail) if t.startswith("ERROR")), tail[-1] if tail else "no output")
        raise EnvironmentBuildError(f"{requirements.name}: pip could not install it ({reason}); "
                                    "fix the requirement and run again")
    return {"requirements": requirements.read_text(errors="replace")}
