"""What the SageMaker framework images hold, per version, read from their public sources and kept as data in
``image_libraries.json`` beside this module, every line with its source: each image's Python, its main library
pins (``aws/sagemaker-scikit-learn-container`` and ``aws/sagemaker-xgboost-container``: the ``requirements.txt``
and ``docker/<version>/base/Dockerfile.cpu`` at each version's tag) and the rest of its Python world (its conda
base environment, everything its Dockerfiles and requirements install, the SageMaker toolkits, pyarrow, the
``aws`` command); for the PyTorch and TensorFlow training images, the SDK's image configuration (each framework
version and its Pythons) and their main libraries beyond the framework (``aws/deep-learning-containers``), so
that a local run says exactly how the libraries a job gets differ from its image's.
"""

from __future__ import annotations

import functools
import json
import platform
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from pipelines.local import sdk_image_config
from pipelines.local.graph import steps_by_name

DATA = Path(__file__).with_name("image_libraries.json")
# the repository part of an image URI and the version at the start of its tag ("1.2-1-cpu-py3" -> "1.2-1")
_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/(?P<repository>[a-z0-9-]+):"
                  r"(?P<version>\d+\.\d+(?:\.\d+)?-\d+)")


FROM_SOURCE = "from source"  # in the data, instead of why a library is unavailable: PyPI has its sources only


@dataclass(frozen=True)
class Library:
    """One library of an image's world: the version the image has (a version, a range with a lower bound, or,
    where PyPI has nothing of that name, what the image has instead: ``AWS CLI v2``, ``not in the image``),
    where that was read, and, for a library the engine never installs, why (``unavailable``). A library PyPI
    publishes as source only (the SageMaker toolkits) is ``from_source``: built here, without its dependencies
    (the rest of the world holds them)."""

    name: str
    version: str
    source: str
    unavailable: str = ""
    from_source: bool = False

    @property
    def described(self) -> bool:
        """True if ``version`` describes what the image has rather than naming a version or range of ``name``."""
        return _specifier(self.version) is None

    def satisfied(self, used: str) -> bool:
        """True if version ``used`` is the image's version (or within its range)."""
        return _satisfies(self.version, used)


@dataclass(frozen=True)
class ImageLibraries:
    """One image version: its Python, its main libraries as pinned at the version's tag, and the rest of what
    its Python imports (``world``, from the most to the least needed)."""

    repository: str
    version: str
    python: str
    pins: tuple[tuple[str, str], ...]  # (distribution, version or specifier) in the image's requirements
    source: str  # where the pins were read
    world: tuple[Library, ...] = ()

    @property
    def name(self) -> str:
        """``repository:version``, as ``images prepare`` takes it."""
        return f"{self.repository}:{self.version}"

    def satisfied(self, distribution: str, used: str) -> bool:
        """True if version ``used`` of ``distribution`` is what the image pins (or within its pinned range)."""
        pinned = dict(self.pins).get(distribution)
        return pinned is None or _satisfies(pinned, used)


def _specifier(version: str) -> SpecifierSet | None:
    """``version`` as a specifier (an exact version is ``==``), or None for a description."""
    try:
        return SpecifierSet(f"=={Version(version)}") if version[:1].isdigit() else SpecifierSet(version)
    except (InvalidVersion, InvalidSpecifier):
        return None


def _lines(part: dict[str, list[str]], sources: dict[str, str], where: str) -> tuple[Library, ...]:
    """The ``[version, source key(, why unavailable, or "from source")]`` lines of one part of the data, each with
    its source; ValueError naming the line whose source is missing."""
    found = []
    for name, line in part.items():
        if not 2 <= len(line) <= 3 or line[1] not in sources:
            raise ValueError(f"{DATA.name}: {where}: {name} {line!r} needs [version, source key(, why unavailable)] "
                             f"with a source key of {sorted(sources)}")
        note = line[2] if len(line) == 3 else ""
        found.append(Library(name, line[0], sources[line[1]], "" if note == FROM_SOURCE else note, note == FROM_SOURCE))
    return tuple(found)


@functools.lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    return json.loads(DATA.read_text())


def _images() -> dict[tuple[str, str], ImageLibraries]:
    data = _data()
    found = {}
    for name, entry in data["images"].items():
        repository, version = name.split(":")
        sources = entry["sources"]
        pins = _lines(entry["pins"], sources, f"{name} pins")
        python = _lines({"python": entry["python"]}, sources, name)[0].version
        found[(repository, version)] = ImageLibraries(
            repository, version, python, tuple((pin.name, pin.version) for pin in pins),
            f"{data['repositories'][repository]}@{entry['ref']}: requirements.txt, docker/{version}/base/Dockerfile.cpu",
            _lines(entry["world"], sources, f"{name} world"))
    return found


IMAGES: dict[tuple[str, str], ImageLibraries] = _images()


PYTORCH, TENSORFLOW = "pytorch-training", "tensorflow-training"
_FRAMEWORKS = {PYTORCH: ("pytorch", "torch"), TENSORFLOW: ("tensorflow", "tensorflow")}  # SDK config, distribution
# a deep learning container's tag: "<framework version>-<cpu|gpu>-py<major><minor>[-cuXYZ]-<os>-sagemaker"
_FRAMEWORK_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/(?P<repository>[a-z0-9-]+):"
                            r"(?P<version>\d+\.\d+(?:\.\d+)?)-(?:cpu|gpu)-py(?P<python>3\d+)(?:-|$)")


@functools.lru_cache(maxsize=1)
def framework_images() -> dict[tuple[str, str], ImageLibraries]:
    """The PyTorch and TensorFlow training images, one entry per (framework version, Python), read from the
    SDK's image configuration (sagemaker-core's ``image_uri_config``): their main pin is the framework."""
    found: dict[tuple[str, str], ImageLibraries] = {}
    sdk = sdk_image_config.version()
    for repository, (config_name, library) in _FRAMEWORKS.items():
        config = sdk_image_config.config(config_name)
        for version, entry in config.get("training", config).get("versions", {}).items():
            for python in entry.get("py_versions", []):
                if not re.fullmatch(r"py3\d+", python):  # the oldest images name no minor version (py3)
                    continue
                tag = f"{version}-{python}"
                found[(repository, tag)] = ImageLibraries(
                    repository, tag, f"{python[2]}.{python[3:]}", ((library, version),),
                    f"sagemaker-core {sdk}: image_uri_config/{config_name}.json",
                    framework_world(repository, version))
    return found


def framework_world(repository: str, version: str) -> tuple[Library, ...]:
    """The main libraries beyond the framework of a PyTorch or TensorFlow training image (``aws/deep-learning-
    containers``): its version's own lines (torchvision, torchaudio) first, then those of its version range."""
    framework = _data()["frameworks"][repository]
    sources, where = framework["sources"], f"{repository}:{version}"
    own = _lines(framework.get("versions", {}).get(version, {}), sources, where)
    ranged = next((_lines(part["world"], sources, where) for part in framework["ranges"]
                   if SpecifierSet(part["versions"]).contains(version)), ())
    return own + ranged


def all_images() -> dict[tuple[str, str], ImageLibraries]:
    """Every image of the table: the SKLearn and XGBoost images, then the PyTorch and TensorFlow ones."""
    return {**IMAGES, **framework_images()}


def libraries_of(image_uri: str) -> ImageLibraries | None:
    """The table's entry for a SageMaker framework image URI, or None for any other image."""
    found = _IMAGE.match(image_uri or "")
    if found:
        return IMAGES.get((found.group("repository"), found.group("version")))
    framework = _FRAMEWORK_IMAGE.match(image_uri or "")
    return framework_images().get((framework.group("repository"), f"{framework.group('version')}-py"
                                                                  f"{framework.group('python')}")) if framework else None


def images_in(definition: dict[str, Any]) -> list[ImageLibraries]:
    """The table's images that a definition's processing and training steps name (once each, in order)."""
    found: list[ImageLibraries] = []
    for step in steps_by_name(definition).values():
        arguments = step.get("Arguments") if isinstance(step.get("Arguments"), dict) else {}
        for uri in (arguments.get("AppSpecification", {}).get("ImageUri"),
                    arguments.get("AlgorithmSpecification", {}).get("TrainingImage")):
            image = libraries_of(uri) if isinstance(uri, str) else None
            if image is not None and image not in found:
                found.append(image)
    return found


def named(text: str) -> ImageLibraries:
    """The entry for ``REPOSITORY:VERSION`` (``sagemaker-xgboost:1.7-1``) or an image URI; ValueError
    listing the table's names for anything else."""
    found = libraries_of(text) or all_images().get(tuple(text.split(":", 1)) if ":" in text else ("", ""))
    if found is None:
        raise ValueError(f"{text!r} is not an image of the table; one of: {', '.join(i.name for i in IMAGES.values())}, "
                         f"or {PYTORCH}:VERSION-pyXY / {TENSORFLOW}:VERSION-pyXY (`images list` names them)")
    return found


def _installed(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _satisfies(pinned: str, used: str) -> bool:
    """True if ``used`` is the pinned version, or within a pinned range (``>=2.0.0``)."""
    try:
        return Version(pinned) == Version(used) if pinned[:1].isdigit() else SpecifierSet(pinned).contains(used)
    except ValueError:  # "not installed", or a description ("AWS CLI v2")
        return False


def _python_difference(image: ImageLibraries, here: str, why: str = "") -> list[str]:
    """The job's Python (``here``) where its minor version is not the image's, with ``why``."""
    minor = lambda version: version.split(".")[:2]  # noqa: E731
    return [f"Python {image.python} (here {here}{why})"] if minor(image.python) != minor(here) else []


def engine_differences(image_uri: str) -> str | None:
    """How this interpreter's libraries, which a job runs with when image environments are off, differ from
    its image's, in one line; None for an image not in the table."""
    image = libraries_of(image_uri)
    if image is None:
        return None
    here = {name: _installed(name) for name, _ in image.pins}
    parts = _python_difference(image, platform.python_version()) + [
        f"{name} {pinned} (here {here[name]})" for name, pinned in image.pins if not image.satisfied(name, here[name])]
    return (f"the {image.name} image's libraries ({image.source}) differ from this interpreter's, which the "
            f"job runs with: {', '.join(parts)}" if parts else None)


def environment_differences(image: ImageLibraries, manifest: dict[str, Any]) -> str:
    """How the image's environment built here (its build ``manifest``) differs from the image, in one line: its
    Python and main libraries with why, then the rest of its world that differs (the manifest says why)."""
    pins = [difference for difference in manifest["differences"] if difference[0] in manifest["installed"]]
    world = [difference for difference in manifest["differences"] if difference[0] not in manifest["installed"]]
    chosen = manifest.get("python_chosen")  # why the environment is on another Python (older manifests: not said)
    parts = _python_difference(image, manifest["python"], f": {chosen}" if chosen else "") + [
        f"{name} {pinned} -> {used} ({why})" for name, pinned, used, why in pins]
    if world:
        parts.append(f"of the rest of its world, {', '.join(f'{name} {pinned} -> {used}' for name, pinned, used, _ in world)}"
                     " (the environment's build manifest says why)")
    installed = ", ".join(f"{name} {version}" for name, version in manifest["installed"].items())
    return (f"the job runs on the {image.name} image's libraries ({installed})"
            + (f"; not as in the image: {'; '.join(parts)}" if parts else ""))
