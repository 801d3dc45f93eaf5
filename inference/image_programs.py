"""The local programs standing in for container images, and the files each image would hold.

An image runs ``IMAGE train`` or ``IMAGE serve``. Locally, our own image is its ``container``
package, visible read-only at ``/opt/program/container`` with ``/opt/program`` as the working
directory, as its Dockerfile lays it out, with its pinned ``container/requirements.txt`` installed (in
an environment derived from the engine's, see ``pipelines.local.environments``). An image mapped to a command (config
``local_image_programs``) sees, read-only at their own paths, the files and folders that command
names (a file's whole folder, so that its modules import; for ``-m MODULE``, that module in the
current directory), and starts in the current directory; nothing else of this machine.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

# our own image (container/), as container/build_and_push.sh names it, in any account and region
OWN_IMAGE_REPOSITORY = "lead-scoring-xgboost"
OWN_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/" + OWN_IMAGE_REPOSITORY
                       + r"(:[\w.-]+|@sha256:[0-9a-f]{64})?$")
OWN_IMAGE_HOME = "/opt/program"  # the Dockerfile's WORKDIR


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
    programs for our image, else None."""
    if image in programs:
        return mapped_program(programs[image])
    if OWN_IMAGE.fullmatch(image):
        return own_image_program()
    return None
