"""The environment of a SageMaker framework image: its Python world (see ``pipelines.local.image_libraries``):
its main libraries at the versions its tag pins and the rest of what the image's Python imports (pip,
setuptools, wheel, requests, pyarrow, the toolkits, awscli as the ``aws`` command, ...), installed with uv
once per (image version, Python): on the image's minor version of Python where it is installed on this
machine (``interpreters``), else on this machine's Python.

Every library is a direct requirement from the image's version (or its range's lower bound) up: where that
version has no wheel for the environment's Python, uv's ``lowest-direct`` resolution takes the nearest
installable version above it, and a version below what a local job needs (``LOCAL_MINIMUMS``) is raised to it.
A library of the world that cannot be installed here (published as source only, not on the package index, or
at odds with the image's other libraries for that Python) is installed from its lower bound up where its range
has an upper bound, else left out, and the build goes on; a pin that cannot be installed is an error.
The manifest records, per library, what the image has, what was installed and why they differ. Wheels are
downloaded once into the cache's ``uv-wheels`` folder and hard-linked into every environment that uses them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import uv
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from pipelines.errors import EnvironmentBuildError
import pipelines.local.environments.interpreters as interpreters
from pipelines.local.environments.cache import BUILD_VERSION, Environment, building, create, finished, stream
from pipelines.local.image_libraries import ImageLibraries, Library

WHEELS = "uv-wheels"
# what uv says when it cannot reach the package index (as opposed to a requirement it cannot satisfy)
_UNREACHABLE = ("Failed to fetch", "error sending request", "tcp connect error", "dns error", "Network unreachable",
                "Connection refused", "operation timed out", "Could not connect")


def python_of(image: ImageLibraries) -> tuple[interpreters.Interpreter, str]:
    """The Python ``image``'s environment is made with here, and why: the image's minor version where it is
    installed on this machine and can install what a local job needs, else this machine's Python."""
    minor = interpreters.minor_of(image.python)
    if Version(minor) < Version(OLDEST_PYTHON):
        return interpreters.this(), (f"the image's Python {minor} is older than the {OLDEST_PYTHON} the engine's "
                                     "programs in a job need")
    found = interpreters.find(minor)
    if found is not None:
        return found, f"the image's Python {minor}, installed here"
    return interpreters.this(), f"the image's Python {minor} is not installed here"


def folder(cache: Path, image: ImageLibraries) -> Path:
    """Where ``image``'s environment lives in ``cache``, for the Python it is made with here."""
    python, _ = python_of(image)
    world = [[library.name, library.version, library.unavailable, library.from_source] for library in image.world]
    key = hashlib.sha256(json.dumps([BUILD_VERSION, python.build, python.prefix, image.repository, image.version,
                                     image.pins, world]).encode()).hexdigest()[:12]
    return cache / f"image-{image.repository}-{image.version}-py{python.minor}-{key}"


def cached(cache: Path, image: ImageLibraries) -> Environment | None:
    """``image``'s environment if it is built; None otherwise."""
    target = folder(cache, image)
    manifest = finished(target)
    return Environment(target, manifest=manifest) if manifest is not None else None


def environment_of(cache: Path, image: ImageLibraries, log: Callable[[str], None]) -> Environment:
    """``image``'s environment, built now if it is not cached; EnvironmentBuildError naming the image and
    the library that failed (nothing half-built is left)."""
    found = cached(cache, image)
    if found is not None:
        return found
    target = folder(cache, image)
    python, why = python_of(image)
    with building(cache, target, image.name, log) as needed:
        if needed:
            log(f"{image.name}: building the image's environment on Python {python.version} ({python.path}: {why}) "
                f"in {target} (once; every later run and store reuses it)")
            create(target, lambda environment: _install(cache, environment, image, (python, why), log),
                   python=python.path)
    found = cached(cache, image)
    assert found is not None
    log(f"{image.name}: environment ready ({', '.join(f'{n} {v}' for n, v in found.manifest['installed'].items())})")
    return found


def _uv(*arguments: str) -> list[str]:
    return [uv.find_uv_bin(), *arguments]


def _uv_environment(cache: Path) -> dict[str, str]:
    # the user's uv settings (an index mirror, offline mode) apply; the wheels are ours
    return {**os.environ, "UV_CACHE_DIR": str(cache / WHEELS), "UV_NO_PROGRESS": "1"}


# the lowest version a local job needs, and why: the store's S3 endpoint reaches job programs as AWS_ENDPOINT_URL
_ENDPOINT = "the store's S3 endpoint reaches jobs as AWS_ENDPOINT_URL, which boto3 honours from 1.28.0 (botocore 1.31.0)"
LOCAL_MINIMUMS = {
    "boto3": ("1.28.0", _ENDPOINT),
    "botocore": ("1.31.0", _ENDPOINT),
    "awscli": ("1.29.0", ("jobs call `aws` against the store's S3 endpoint: awscli v1 from PyPI, which finds it "
                          "through AWS_ENDPOINT_URL from 1.29.0 (botocore 1.31.0)")),
    "requests": ("2.20.0", ("scripts written for SageMaker's Miniconda-based images import requests, which their "
                            "conda base environment carries")),
}
# the engine's own programs run in an image's environment (the built-in XGBoost emulation, the S3 client's
# settings): setup.py's python_requires; boto3 1.28.0 (above) alone would need 3.7
OLDEST_PYTHON = "3.10"
_LOWER = (">=", ">", "==", "~=", "===")


def _lower_bound(pinned: str) -> Version | None:
    """The lowest version ``pinned`` (a version or a range) allows, or None for a range without one or a
    description (``AWS CLI v2``)."""
    if pinned[:1].isdigit():
        return Version(pinned)
    try:
        bounds = [Version(spec.version) for spec in SpecifierSet(pinned) if spec.operator in _LOWER]
    except ValueError:
        return None
    return max(bounds) if bounds else None


def _below_local_minimum(name: str, pinned: str) -> bool:
    minimum = LOCAL_MINIMUMS.get(name)
    if minimum is None:
        return False
    lowest = _lower_bound(pinned)
    return lowest is None or lowest < Version(minimum[0])


def requirement(name: str, pinned: str) -> str:
    """The requirement uv resolves for one library: from the image's version up (an exact pin is taken when it
    installs here), or its range as it is; from the local minimum up (keeping the range's upper bounds) for a
    version below it or a library the image has in another form. ValueError for a range without a lower bound,
    which ``lowest-direct`` would resolve to the library's oldest release."""
    if _below_local_minimum(name, pinned):
        return ",".join([f"{name}>={LOCAL_MINIMUMS[name][0]}", *_upper_bounds(pinned)])
    if _lower_bound(pinned) is None:
        raise ValueError(f"{name} {pinned!r} has no lower bound and no local minimum")
    return f"{name}>={pinned}" if pinned[:1].isdigit() else f"{name}{pinned}"


def _upper_bounds(pinned: str) -> list[str]:
    try:
        return [str(spec) for spec in SpecifierSet(pinned) if spec.operator in ("<", "<=", "!=")]
    except ValueError:  # an exact version, or a description
        return []


def _requirements(image: ImageLibraries, world: list[Library]) -> list[str]:
    try:
        return [*(requirement(n, p) for n, p in image.pins), *(requirement(l.name, l.version) for l in world)]
    except ValueError as exc:
        raise EnvironmentBuildError(f"{image.name}: the image table ({image.source}) is wrong: {exc}") from None


def _install(cache: Path, environment: Environment, image: ImageLibraries,
             chosen: tuple[interpreters.Interpreter, str], log: Callable[[str], None]) -> dict[str, Any]:
    python, minor = str(environment.root / "bin" / "python"), chosen[0].minor
    changed = _install_world(cache, python, minor, image, log)
    changed.update(_install_from_source(cache, python, minor, image, log))
    listed = subprocess.run(_uv("pip", "list", "--python", python, "--format", "json"), capture_output=True,
                            text=True, env=_uv_environment(cache), check=True).stdout
    versions = {canonicalize_name(entry["name"]): entry["version"] for entry in json.loads(listed)}
    found = lambda name: versions.get(canonicalize_name(name), "not installed")  # noqa: E731
    installed = {name: found(name) for name, _ in image.pins}
    return {"image": image.name, "source": image.source, "image_python": image.python,
            "python": chosen[0].version, "python_chosen": chosen[1], "installed": installed,
            "world": {library.name: found(library.name) for library in image.world},
            "packages": dict(sorted(versions.items())),
            "differences": _differences(cache, python, minor, image, installed, found, changed)}


def _install_world(cache: Path, python: str, minor: str, image: ImageLibraries,
                   log: Callable[[str], None]) -> dict[str, str]:
    """Install the image's pins and world into ``python``'s environment (Python ``minor``); why each library of
    the world that uv's failures named is not installed as the image has it (its range from its lower bound up,
    else left out). EnvironmentBuildError if a pin cannot be installed or the index cannot be reached."""
    world = [library for library in image.world if not library.unavailable and not library.from_source]
    changed: dict[str, str] = {}
    while True:
        code, tail = _uv_install(cache, python, _requirements(image, world), log)
        if code == 0:
            return changed
        culprit = None if _unreachable(tail) else _culprit(tail, world)
        if culprit is None:
            raise EnvironmentBuildError(_failure(image, minor, tail))
        index, reason = world.index(culprit), _cannot_install(culprit, minor, tail)
        if _upper_bounds(culprit.version):
            lowest = _lower_bound(requirement(culprit.name, culprit.version).removeprefix(culprit.name))
            world[index] = dataclasses.replace(culprit, version=f">={lowest}")
            changed[culprit.name] = f"{reason}; installed from {lowest} up instead"
        else:
            del world[index]
            changed[culprit.name] = reason
        log(f"{image.name}: {culprit.name} {culprit.version}: {changed[culprit.name]}")


def _install_from_source(cache: Path, python: str, minor: str, image: ImageLibraries,
                         log: Callable[[str], None]) -> dict[str, str]:
    """Build and install the world's libraries that PyPI publishes as source only (the SageMaker toolkits), each
    without its dependencies (the world holds them); why each one that does not build is left out."""
    left_out = {}
    for library in (library for library in image.world if library.from_source):
        command = _uv("pip", "install", "--python", python, "--no-deps", "--compile-bytecode", "--resolution",
                      "lowest-direct", requirement(library.name, library.version))
        code, tail = stream(command, log, "uv: ", environment=_uv_environment(cache))
        if code != 0:
            if _unreachable(tail):
                raise EnvironmentBuildError(_failure(image, minor, tail))
            left_out[library.name] = (f"PyPI publishes it as source only, and its build failed here "
                                      f"({next((line for line in tail if line.startswith('error')), tail[-1:])})")
            log(f"{image.name}: {library.name} {library.version}: {left_out[library.name]}")
    return left_out


def _uv_install(cache: Path, python: str, requirements: list[str], log: Callable[[str], None]) -> tuple[int, list[str]]:
    """uv's install of ``requirements`` (never offline first: offline, ``lowest-direct`` resolves among what the
    cache happens to hold, not among the versions the index has); uv's exit code and last lines."""
    command = _uv("pip", "install", "--python", python, "--only-binary", ":all:", "--compile-bytecode",
                  "--resolution", "lowest-direct", *requirements)
    return stream(command, log, "uv: ", environment=_uv_environment(cache))


def _differences(cache: Path, python: str, minor: str, image: ImageLibraries, installed: dict[str, str],
                 found: Callable[[str], str], changed: dict[str, str]) -> list[list[str]]:
    """``[library, what the image has, what was installed, why]`` for every pin and world library installed
    otherwise than the image has it (pins first, then the world in its order)."""
    pins = [(name, pinned, installed[name]) for name, pinned in image.pins if not image.satisfied(name, installed[name])]
    world: list[tuple[Library, str]] = []
    for library in image.world:
        used = found(library.name)
        if library.unavailable or library.described or not library.satisfied(used):
            world.append((library, used))

    def why(name: str, pinned: str, library: Library | None) -> str:
        if library is not None and library.unavailable:
            return library.unavailable
        if library is not None and library.name in changed:
            return changed[library.name]
        return _why(cache, python, minor, name, pinned)  # a description ("AWS CLI v2") is below any local minimum

    wanted = [(name, pinned, None) for name, pinned, _ in pins] + [(l.name, l.version, l) for l, _ in world]
    with ThreadPoolExecutor(max_workers=4) as pool:  # each asks uv about one library alone
        reasons = list(pool.map(lambda args: why(*args), wanted))
    used = [u for _, _, u in pins] + [u for _, u in world]
    return [[name, pinned, u, reason] for (name, pinned, _), u, reason in zip(wanted, used, reasons)]


def _unreachable(tail: list[str]) -> bool:
    return any(marker in line for line in tail for marker in _UNREACHABLE)


def _name_pattern(name: str) -> str:
    """A pattern for distribution ``name`` as uv writes it (normalized: ``inotify-simple``)."""
    return "[-_.]".join(re.escape(part) for part in canonicalize_name(name).split("-"))


def _mentions(name: str, text: str) -> bool:
    """True if uv's ``text`` names distribution ``name``."""
    return re.search(rf"(?<![\w.-]){_name_pattern(name)}(?![\w-])", text, re.IGNORECASE) is not None


def _culprit(tail: list[str], world: list[Library]) -> Library | None:
    """The world library that uv's failure names, the least needed one if it names several (the world lists
    them from the most to the least needed), or None if it names none (a pin is at fault)."""
    text = "\n".join(tail)
    named = [library for library in world if _mentions(library.name, text)]
    return named[-1] if named else None


def _cannot_install(library: Library, minor: str, tail: list[str]) -> str:
    """Why ``library`` could not be installed as the image has it on Python ``minor``, from uv's failure."""
    text = " ".join(tail)
    if "has no usable wheels" in text or "no wheels with a matching" in text:
        versions = f"{library.version} or later" if library.version[:1].isdigit() else library.version
        return (f"no wheel of {library.name} {versions} for Python {minor} ({platform.machine()}), and source "
                "distributions are not built here")
    if "not found in the package registry" in text or "there is no version of" in text:
        return f"{library.name} {library.version} is not on the package index"
    if re.search(rf"only {_name_pattern(library.name)}\S* (is|are) available", text, re.IGNORECASE):
        return f"the package index has no {library.name} {library.version}"
    cause = next((line for line in tail if line.startswith("cause:")), tail[-1] if tail else "no output")
    return f"at odds with the image's other libraries as installed for Python {minor} (uv: {cause[:300]})"


def _why(cache: Path, python: str, minor: str, name: str, pinned: str) -> str:
    """Why the image's version of ``name`` was not installed: a local job needs a newer one, it has no wheel
    here, or the other libraries rule it out."""
    if _below_local_minimum(name, pinned):
        return LOCAL_MINIMUMS[name][1]
    alone = subprocess.run(_uv("pip", "compile", "--quiet", "--only-binary", ":all:", "--python", python, "-"),
                           input=f"{name}=={pinned}\n" if pinned[:1].isdigit() else f"{name}{pinned}\n",
                           capture_output=True,
                           text=True, env=_uv_environment(cache))
    if alone.returncode != 0:
        return f"no wheel of {name} {pinned} installs on Python {minor} ({platform.machine()})"
    return f"the image's other libraries, installed for Python {minor}, need another version"


def _failure(image: ImageLibraries, minor: str, tail: list[str]) -> str:
    reason = next((line for line in tail if line.startswith("cause:") and "Because" in line),
                  next((line for line in tail if line.startswith("error:")), tail[-1] if tail else "no output"))
    if any(marker in line for line in tail for marker in _UNREACHABLE):
        cause = next((line for line in tail if "Failed to fetch" in line), reason)
        return (f"{image.name}: its environment is not cached and the package index cannot be reached ({cause}); "
                f"build it where the index is reachable with `python -m pipelines.run images prepare {image.name}`, "
                "or run the job with this interpreter's libraries: --image-libraries engine "
                "(config image_libraries = \"engine\")")
    return f"{image.name}: uv could not install the image's libraries for Python {minor} ({reason})"
