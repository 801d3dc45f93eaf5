"""The local programs standing in for container images, and the files each image would hold.

An image runs ``IMAGE train`` or ``IMAGE serve``. Locally, our own image is its ``container``
package, visible read-only at ``/opt/program/container`` with ``/opt/program`` as the working
directory, as its Dockerfile lays it out, with its pinned ``container/requirements.txt`` installed (in
an environment derived from the engine's, see ``pipelines.local.environments``). An image mapped to a command (config
``local_image_programs``) sees, read-only at their own paths, the files and folders that command
names (a file's whole folder, so that its modules import; for ``-m MODULE``, that module in the
current directory), and starts in the current directory; nothing else of this machine.

The R image (``container-r/``) runs its programs with this machine's R (Debian's ``r-base-core`` and
``r-cran-*`` packages, the versions its Dockerfile pins): they are read-only at ``/opt/program``, the working
directory, where ``Rscript train`` is what ``train`` on the image's PATH runs, in the job sandbox (the only
runtime that lays files out at /opt/program). Without R or the sandbox, asking for that image is a
``MissingToolError`` saying what to install.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from pipelines.errors import MissingToolError
from pipelines.local import job_runtime


def _image_in_any_account(repository: str) -> re.Pattern[str]:
    """The URIs of an ECR ``repository`` in any account and region, with or without a tag or digest."""
    return re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/" + repository
                      + r"(:[\w.-]+|@sha256:[0-9a-f]{64})?$")


# our own image (container/), as container/build_and_push.sh names it, in any account and region
OWN_IMAGE_REPOSITORY = "lead-scoring-xgboost"
OWN_IMAGE = _image_in_any_account(OWN_IMAGE_REPOSITORY)
OWN_IMAGE_HOME = "/opt/program"  # the Dockerfile's WORKDIR
# the team's R algorithm (container-r/), as container-r/build_and_push.sh names it
R_IMAGE_REPOSITORY = "lead-scoring-r"
R_IMAGE = _image_in_any_account(R_IMAGE_REPOSITORY)
R_IMAGE_FOLDER = Path(__file__).resolve().parents[1] / "container-r"
R_IMAGE_FILES = ("train", "serve", "common.R", "hyperparameters.R", "calibration.R")  # what its Dockerfile copies
R_PACKAGES = ("gbm", "plumber", "jsonlite")
R_INSTALL = "sudo apt-get install r-base-core r-cran-gbm r-cran-plumber r-cran-jsonlite"


@dataclass(frozen=True)
class ImageProgram:
    """What stands in for an image: the command it runs (before ``train``/``serve``), the image's files
    (host path -> container path, read-only) and its working directory."""

    command: tuple[str, ...]
    files: tuple[tuple[Path, str], ...] = ()
    workdir: str = "/"
    requirements: Path | None = None  # what the image pip-installs (its programs run with exactly these)

    def describe(self) -> str:
        """The command, as a user would type it."""
        return shlex.join(self.command)


def own_image_program() -> ImageProgram:
    """Our own image: ``python3 -m container`` in /opt/program."""
    spec = importlib.util.find_spec("container")
    assert spec is not None and spec.origin is not None
    package = Path(spec.origin).parent
    # and the one module that opens a job's MLflow run, as the Dockerfile copies it beside the package
    shared = [(package.parent / "processing" / name, f"{OWN_IMAGE_HOME}/processing/{name}")
              for name in ("__init__.py", "mlflow_run.py")]
    return ImageProgram(("python3", "-m", "container"), ((package, f"{OWN_IMAGE_HOME}/container"), *shared),
                        OWN_IMAGE_HOME, package / "requirements.txt")


def r_image_program() -> ImageProgram:
    """The R image: ``Rscript train`` (or ``serve``) in /opt/program, its programs read-only there; MissingToolError
    saying what to install when this machine cannot run them."""
    problem = _r_problem()
    if problem is not None:
        raise MissingToolError(f"the R image ({R_IMAGE_REPOSITORY}) {problem}")
    files = tuple((R_IMAGE_FOLDER / name, f"{OWN_IMAGE_HOME}/{name}") for name in R_IMAGE_FILES)
    return ImageProgram(("Rscript",), files, OWN_IMAGE_HOME)


def _r_problem() -> str | None:
    """What keeps the R image's programs from running here (R, its packages, the job sandbox that lays them out at
    /opt/program), with what to install; None if nothing."""
    rscript = shutil.which("Rscript")
    missing = "Rscript is not installed" if rscript is None else None
    packages = _missing_r_packages(rscript) if rscript is not None else ()
    if packages:
        missing = f"R's package(s) {', '.join(packages)} are not installed"
    if missing is not None:
        return f"runs its programs with this machine's R, and {missing}: install them with `{R_INSTALL}`"
    runtime = job_runtime.automatic()
    if not runtime.sandboxed:  # only the sandbox binds the image's files at /opt/program
        return (f"runs its programs at /opt/program, as in the image, which only the job sandbox gives, and "
                f"{runtime.notice}")
    return None


@functools.lru_cache(maxsize=4)
def _missing_r_packages(rscript: str) -> tuple[str, ...]:
    """The packages of R_PACKAGES that ``rscript`` cannot find (asked once per Rscript)."""
    probe = "for (p in commandArgs(TRUE)) if (!nzchar(system.file(package = p))) cat(p, '\\n')"
    try:
        done = subprocess.run([rscript, "-e", probe, *R_PACKAGES], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return R_PACKAGES
    return tuple(done.stdout.split()) if done.returncode == 0 else R_PACKAGES


def mapped_program(command: str, cwd: Path | None = None) -> ImageProgram:
    """A ``local_image_programs`` command, with the files it names (relative to ``cwd``)."""
    cwd = (cwd or Path(os.getcwd())).resolve()
    words = shlex.split(command)
    named: list[Path] = []
    for index, word in enumerate(words):
        if index > 0 and words[index - 1] == "-m":  # a module of the current directory: that package or file
            top = cwd / word.split(".")[0]
            named += [p for p in (top, top.with_name(top.name + ".py")) if p.exists()]
        elif index > 0 or "/" in word:
            path = (cwd / word).resolve()
            if path.is_file():
                named.append(path.parent)
            elif path.is_dir():
                named.append(path)
    shown = [p.resolve() for p in named if not _system(p.resolve())]
    return ImageProgram(tuple(words), tuple((p, str(p)) for p in dict.fromkeys(shown)), str(cwd))


def _system(path: Path) -> bool:
    """True for / and the system folders every job sees already (or must never get)."""
    return path == Path("/") or path.parts[1] in ("usr", "proc", "sys", "dev", "etc")


def image_program(image: str, programs: Mapping[str, str]) -> ImageProgram | None:
    """The local program standing in for ``image``: the one ``programs`` maps it to, else our own image's
    programs for our image or the R image's for that one (MissingToolError without R), else None."""
    if image in programs:
        return mapped_program(programs[image])
    if OWN_IMAGE.fullmatch(image):
        return own_image_program()
    if R_IMAGE.fullmatch(image):
        return r_image_program()
    return None
