"""A job's ``requirements.txt`` installed with pip, as the SageMaker training toolkit installs it, into an
environment derived from the job's base: its image's environment, or this interpreter's libraries.

The derived virtualenv's ``site-packages`` first holds what the requirements install and then sees the
base's libraries (a ``.pth`` line), so a requirement the base already satisfies installs nothing.
"""

from __future__ import annotations

import hashlib
import sys
import sysconfig
from pathlib import Path
from typing import Any, Callable

from pipelines.errors import EnvironmentBuildError
from pipelines.local.environments.cache import BUILD_VERSION, Environment, building, create, finished, stream


def with_requirements(cache: Path, requirements: Path, base: Environment | None,
                      log: Callable[[str], None]) -> Environment:
    """``base`` (None: this interpreter's libraries) plus ``requirements``, pip run in the file's folder so
    that relative paths in it resolve; EnvironmentBuildError naming the file and pip's reason."""
    content = requirements.read_bytes()
    below = str(base.root) if base else sys.prefix
    key = hashlib.sha256(b"\0".join([BUILD_VERSION.encode(), sys.version.encode(), below.encode(),
                                     content])).hexdigest()[:20]
    target = cache / f"requirements-{key}"
    if finished(target) is None:
        with building(cache, target, requirements.name) as needed:
            if needed:
                log(f"{requirements.name}: installing into a new environment {target} (once; later runs reuse it)")
                create(target, lambda environment: _install(environment, requirements, log), base)
    log(f"{requirements.name}: installed in the cached environment {target}")
    return Environment(target, base, finished(target) or {})


def _install(environment: Environment, requirements: Path, log: Callable[[str], None]) -> dict[str, Any]:
    below = environment.base.site_packages if environment.base else Path(sysconfig.get_paths()["purelib"])
    # after the environment's own packages, the base's (and what its .pth files add)
    (environment.site_packages / "zz-base-libraries.pth").write_text(
        f"import site; site.addsitedir({str(below)!r})\n")
    command = [sys.executable, "-m", "pip", "--python", str(environment.root / "bin" / "python"), "install",
               "--no-input", "--disable-pip-version-check", "--progress-bar", "off", "-r", str(requirements)]
    code, tail = stream(command, log, "pip: ", cwd=requirements.parent)
    if code != 0:
        reason = next((t for t in reversed(tail) if t.startswith("ERROR")), tail[-1] if tail else "no output")
        raise EnvironmentBuildError(f"{requirements.name}: pip could not install it ({reason}); "
                                    "fix the requirement and run again")
    return {"requirements": requirements.read_text(errors="replace")}
