"""A function step's pre-execution commands (``pre_exec.sh``), run once into an environment derived from the
job's base, in the job runtime, instead of in every job where the interpreter is read-only.

The commands run as the bootstrap runs them (``bash -eu``) in a sandbox where the new environment is the
interpreter, is writable, and is first on ``PATH``; its ``pip`` installs into it. The environment is cached
by the script's content and its base, as requirements environments are.
"""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path
from typing import Any, Callable

from pipelines.errors import EnvironmentBuildError
from pipelines.local import job_runtime
from pipelines.local.environments.cache import Environment, derived, pip_command

SCRIPT = "/opt/ml/pre_exec.sh"


def with_commands(cache: Path, script: Path, base: Environment | None, runtime: job_runtime.Runtime,
                  log: Callable[[str], None]) -> Environment:
    """``base`` (None: this interpreter's libraries) after ``script`` ran in it; EnvironmentBuildError with the
    script's last line if it fails (nothing half-built is left)."""
    content = script.read_bytes()
    return derived(cache, "commands", content, base, script.name,
                   ("running the pre-execution commands into", "its commands ran in"),
                   lambda environment: _run(environment, content, runtime, log), log)


def _run(environment: Environment, content: bytes, runtime: job_runtime.Runtime,
         log: Callable[[str], None]) -> dict[str, Any]:
    pip = environment.root / "bin" / "pip"  # a pip installing into this environment
    pip.write_text(f'#!/bin/sh\nexec {shlex.join(pip_command(environment))} "$@"\n')
    pip.chmod(0o755)
    (environment.root / "bin" / "pip3").symlink_to("pip")
    with tempfile.TemporaryDirectory(prefix="pre-exec-") as folder:
        opt_ml = Path(folder) / "opt-ml"
        opt_ml.mkdir()
        (opt_ml / "pre_exec.sh").write_bytes(content)
        # the environment is the interpreter (read-only) and, bound again over it, writable for the commands
        spec = job_runtime.JobSpec(["/bin/bash", "-eu", SCRIPT], opt_ml, Path(folder), python_env=environment.root,
                                   python_layers=environment.layers[1:], engine_dirs=(environment.root,))
        ended = job_runtime.run(runtime, spec, lambda line: log(f"pre_exec.sh: {line}"))
    if ended.exit_code != 0:
        raise EnvironmentBuildError(f"pre_exec.sh: the pre-execution commands failed with exit code "
                                    f"{ended.exit_code} ({ended.last_line or 'no output'}); fix them and run again")
    return {"pre_execution_commands": content.decode(errors="replace")}
