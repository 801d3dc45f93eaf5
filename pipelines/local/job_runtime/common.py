"""What both runtime backends share: the job's interpreter, and a launcher that dies with the engine."""

from __future__ import annotations

import functools
import os
import shutil
import sys

from pipelines.local.job_runtime.spec import PYTHON_COMMANDS, JobSpec


def interpreter(spec: JobSpec | None = None) -> str:
    """The interpreter a job program runs with (``python``/``python3`` in an entrypoint): its environment's,
    else the engine's."""
    if spec is not None and spec.python_env is not None:
        return str(spec.python_env / "bin" / "python")
    return sys.executable


def program_folders(spec: JobSpec) -> list[str]:
    """The folders a job finds its programs in before the system's: its interpreter's, then the ``bin`` of each
    environment below it (an image environment's ``aws``)."""
    return [os.path.dirname(interpreter(spec)), *(str(layer / "bin") for layer in spec.python_layers)]


def interpreter_command(spec: JobSpec) -> list[str]:
    """The spec's command with a leading ``python``/``python3`` replaced by the job's interpreter."""
    return [interpreter(spec) if i == 0 and part in PYTHON_COMMANDS else part for i, part in enumerate(spec.command)]


@functools.lru_cache(maxsize=1)
def launcher() -> list[str]:
    """A prefix that makes the started program die when the engine's thread that started it dies (a killed
    engine leaves no job running); empty where util-linux's ``setpriv`` is missing."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL"] if setpriv else []


ENGINE_PACKAGES = ("pipelines", "processing")  # what the engine's own job programs import


@functools.lru_cache(maxsize=1)
def engine_package_folders() -> tuple[str, ...]:
    """Where the engine's packages (``ENGINE_PACKAGES``) are, resolved."""
    return tuple(os.path.realpath(os.path.dirname((sys.modules.get(name) or __import__(name)).__file__ or ""))
                 for name in ENGINE_PACKAGES)


def engine_package_roots() -> tuple[str, ...]:
    """The folders that hold the engine's packages (the repository, for an editable install)."""
    return tuple(dict.fromkeys(os.path.dirname(folder) for folder in engine_package_folders()))


def engine_code_command(code: str, *arguments: str) -> list[str]:
    """``python3 -c code arguments`` for an interpreter that is not the engine's (an image's environment), with
    the engine's packages importable after that environment's libraries, never before them."""
    return ["python3", "-c", f"import sys; sys.path.extend({list(engine_package_roots())!r}); {code}", *arguments]


def engine_module_command(module: str, *arguments: str) -> list[str]:
    """``python3 -m module arguments`` for an interpreter that is not the engine's (see ``engine_code_command``)."""
    return engine_code_command(f"import runpy; runpy.run_module({module!r}, run_name='__main__', alter_sys=True)",
                               *arguments)
