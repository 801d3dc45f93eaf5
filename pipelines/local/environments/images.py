"""The environment of a SageMaker framework image: its main libraries at the versions its tag pins (see
``pipelines.local.image_libraries``), installed with uv for this Python, once per (image version, Python).

Where a pinned version has no wheel for this Python, uv's ``lowest-direct`` resolution takes the nearest
installable version above it, and a pin below what a local job needs (``LOCAL_MINIMUMS``) is raised to it;
the manifest records, per library, what the image pins, what was installed and why they differ. Wheels are downloaded once into the cache's ``uv-wheels`` folder and hard-linked
into every environment that uses them.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import uv
from packaging.version import Version

from pipelines.errors import EnvironmentBuildError
from pipelines.local.environments.cache import BUILD_VERSION, PYTHON, Environment, building, create, finished, stream
from pipelines.local.image_libraries import ImageLibraries

WHEELS = "uv-wheels"
# what uv says when it cannot reach the package index (as opposed to a requirement it cannot satisfy)
_UNREACHABLE = ("Failed to fetch", "error sending request", "tcp connect error", "dns error", "Network unreachable",
                "Connection refused", "operation timed out", "Could not connect")


def folder(cache: Path, image: ImageLibraries) -> Path:
    """Where ``image``'s environment for this Python lives in ``cache``."""
    key = hashlib.sha256(json.dumps([BUILD_VERSION, sys.version, sys.prefix, image.repository, image.version,
                                     image.pins]).encode()).hexdigest()[:12]
    return cache / f"image-{image.repository}-{image.version}-py{PYTHON}-{key}"


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
    with building(cache, target, image.name, log) as needed:
        if needed:
            log(f"{image.name}: building the image's environment for Python {PYTHON} in {target} "
                "(once; every later run and store reuses it)")
            create(target, lambda environment: _install(cache, environment, image, log))
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
LOCAL_MINIMUMS = {"boto3": ("1.28.0", "the store's S3 endpoint reaches jobs as AWS_ENDPOINT_URL, which boto3 "
                                      "honours from 1.28.0 (botocore 1.31.0)")}


def _below_local_minimum(name: str, pinned: str) -> bool:
    minimum = LOCAL_MINIMUMS.get(name)
    return minimum is not None and pinned[:1].isdigit() and Version(pinned) < Version(minimum[0])


def requirement(name: str, pinned: str) -> str:
    """The requirement uv resolves for one pin: from the pinned version up (an exact pin is taken when it
    installs here), or the pinned range as it is; from the local minimum up for a pin below it."""
    if _below_local_minimum(name, pinned):
        return f"{name}>={LOCAL_MINIMUMS[name][0]}"
    return f"{name}>={pinned}" if pinned[:1].isdigit() else f"{name}{pinned}"


def _install(cache: Path, environment: Environment, image: ImageLibraries, log: Callable[[str], None]) -> dict[str, Any]:
    python = str(environment.root / "bin" / "python")
    command = _uv("pip", "install", "--python", python, "--only-binary", ":all:", "--compile-bytecode",
                  "--resolution", "lowest-direct", *(requirement(n, p) for n, p in image.pins))
    code, tail = stream(command, log, "uv: ", environment=_uv_environment(cache))
    if code != 0:
        raise EnvironmentBuildError(_failure(image, tail))
    listed = subprocess.run(_uv("pip", "list", "--python", python, "--format", "json"), capture_output=True,
                            text=True, env=_uv_environment(cache), check=True).stdout
    versions = {entry["name"].lower(): entry["version"] for entry in json.loads(listed)}
    installed = {name: versions.get(name, "not installed") for name, _ in image.pins}
    return {"image": image.name, "source": image.source, "image_python": image.python,
            "python": platform.python_version(), "installed": installed,
            "differences": [[name, pinned, installed[name], _why(cache, python, name, pinned)]
                            for name, pinned in image.pins if not image.satisfied(name, installed[name])]}


def _why(cache: Path, python: str, name: str, pinned: str) -> str:
    """Why the pinned version of ``name`` was not installed: a local job needs a newer one, it has no wheel
    here, or the other pins rule it out."""
    if _below_local_minimum(name, pinned):
        return LOCAL_MINIMUMS[name][1]
    alone = subprocess.run(_uv("pip", "compile", "--quiet", "--only-binary", ":all:", "--python", python, "-"),
                           input=f"{name}=={pinned}\n" if pinned[:1].isdigit() else f"{name}{pinned}\n",
                           capture_output=True,
                           text=True, env=_uv_environment(cache))
    if alone.returncode != 0:
        return f"no wheel of {name} {pinned} installs on Python {PYTHON} ({platform.machine()})"
    return "the image's other pins, installed for this Python, need another version"


def _failure(image: ImageLibraries, tail: list[str]) -> str:
    reason = next((line for line in tail if line.startswith("cause:") and "Because" in line),
                  next((line for line in tail if line.startswith("error:")), tail[-1] if tail else "no output"))
    if any(marker in line for line in tail for marker in _UNREACHABLE):
        cause = next((line for line in tail if "Failed to fetch" in line), reason)
        return (f"{image.name}: its environment is not cached and the package index cannot be reached ({cause}); "
                f"build it where the index is reachable with `python -m pipelines.run images prepare {image.name}`, "
                "or run the job with this interpreter's libraries: --image-libraries engine "
                "(config image_libraries = \"engine\")")
    return f"{image.name}: uv could not install the image's libraries for Python {PYTHON} ({reason})"
