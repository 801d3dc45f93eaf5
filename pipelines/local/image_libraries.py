"""What the SageMaker framework images ship, per version: their Python and main library pins, read from the
containers' public sources at each version's tag (``aws/sagemaker-scikit-learn-container``: the
``requirements.txt`` and ``docker/<version>/base/Dockerfile.cpu``; ``aws/sagemaker-xgboost-container``: the
same files), and for the PyTorch and TensorFlow training images from the SDK's image configuration (each
framework version and its Pythons), so that a local run says exactly how the libraries a job gets differ
from its image's.
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

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from pipelines.local.graph import steps_by_name

# the repository part of an image URI and the version at the start of its tag ("1.2-1-cpu-py3" -> "1.2-1")
_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/(?P<repository>[a-z0-9-]+):"
                  r"(?P<version>\d+\.\d+(?:\.\d+)?-\d+)")


@dataclass(frozen=True)
class ImageLibraries:
    """One image version: its Python and its main libraries, as pinned at the version's tag."""

    repository: str
    version: str
    python: str
    pins: tuple[tuple[str, str], ...]  # (distribution, version or specifier) in the image's requirements
    source: str  # where the pins were read

    @property
    def name(self) -> str:
        """``repository:version``, as ``images prepare`` takes it."""
        return f"{self.repository}:{self.version}"

    def satisfied(self, distribution: str, used: str) -> bool:
        """True if version ``used`` of ``distribution`` is what the image pins (or within its pinned range)."""
        pinned = dict(self.pins).get(distribution)
        return pinned is None or _satisfies(pinned, used)


SKLEARN, XGBOOST = "sagemaker-scikit-learn", "sagemaker-xgboost"
_SOURCES = {SKLEARN: "aws/sagemaker-scikit-learn-container", XGBOOST: "aws/sagemaker-xgboost-container"}


def _entry(repository: str, version: str, python: str, tag: str, **pins: str) -> ImageLibraries:
    return ImageLibraries(repository, version, python, _pins(pins),
                        f"{_SOURCES[repository]}@{tag}: requirements.txt, docker/{version}/base/Dockerfile.cpu")


def _pins(pins: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((name.replace("_", "-"), value) for name, value in pins.items())


IMAGES: dict[tuple[str, str], ImageLibraries] = {(i.repository, i.version): i for i in (
    _entry(SKLEARN, "0.23-1", "3.7.10", "0.23-1", scikit_learn="0.23.2", numpy="1.19.2", pandas="1.1.3", scipy="1.5.3",
           pyarrow="1.0.0", boto3="1.24.17"),
    _entry(SKLEARN, "1.0-1", "3.8.13", "1.0-1", scikit_learn="1.0.2", numpy="1.24.1", pandas="1.1.3", scipy="1.8.0",
           boto3="1.28.57"),
    _entry(SKLEARN, "1.2-1", "3.9", "1.2-1", scikit_learn="1.2.1", numpy="1.24.1", pandas="1.1.3", scipy="1.8.0",
           boto3="1.28.57"),
    _entry(SKLEARN, "1.4-2", "3.10", "v1.4.2", scikit_learn="1.4.2", numpy="2.1.0", pandas=">=2.0.0", scipy=">=1.9.0",
           boto3="1.28.57"),
    _entry(XGBOOST, "0.90-2", "3.6.13", "0.90-2", xgboost="0.90", numpy="1.18.4", pandas="1.0.4", scikit_learn="0.23.1",
           scipy="1.2.2", matplotlib="3.2.1", boto3="1.13.21"),
    _entry(XGBOOST, "1.0-1", "3.6.13", "v1.0-1", xgboost="1.0", numpy="1.19.2", pandas="1.1.3", scikit_learn="0.23.2",
           scipy="1.2.2", matplotlib="3.3.2", boto3="1.10.14"),
    _entry(XGBOOST, "1.2-1", "3.7.10", "v1.2-1", xgboost="1.2.0", numpy="1.19.2", pandas="1.1.3", scikit_learn="0.23.2",
           scipy="1.5.3", matplotlib="3.3.2", boto3="1.17.52"),
    _entry(XGBOOST, "1.2-2", "3.7.10", "v1.2-2", xgboost="1.2.0", numpy="1.20.3", pandas="1.1.3", scikit_learn="0.23.2",
           scipy="1.5.3", matplotlib="3.3.2", boto3="1.17.52"),
    _entry(XGBOOST, "1.3-1", "3.7.10", "v1.3-1", xgboost="1.3.3", numpy="1.21.6", pandas="1.2.4", scikit_learn="0.24.1",
           scipy="1.6.2", matplotlib="3.4.1", boto3="1.17.52"),
    _entry(XGBOOST, "1.5-1", "3.8.13", "v1.5-1", xgboost="1.5.2", numpy="1.19.2", pandas="1.2.4", scikit_learn="0.24.1",
           scipy="1.6.2", matplotlib="3.4.1", boto3="1.17.52"),
    _entry(XGBOOST, "1.7-1", "3.8.13", "v1.7-1", xgboost="1.7.4", numpy="1.19.2", pandas="1.2.4", scikit_learn="0.24.1",
           scipy="1.6.2", matplotlib="3.4.1", boto3="1.17.52"),
    _entry(XGBOOST, "3.0-5", "3.10", "v3.0-5", xgboost="3.0.5", numpy="2.1.0", pandas="2.2.3", scikit_learn="1.5.2",
           scipy="1.15.0", matplotlib="3.9.2", boto3="1.17.52"),
)}


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
    try:
        distribution = metadata.distribution("sagemaker-core")
    except metadata.PackageNotFoundError:
        return found
    for repository, (config_name, library) in _FRAMEWORKS.items():
        path = f"sagemaker/core/image_uri_config/{config_name}.json"
        try:
            config = json.loads(Path(str(distribution.locate_file(path))).read_text())
        except (OSError, ValueError):
            continue
        for version, entry in config.get("training", config).get("versions", {}).items():
            for python in entry.get("py_versions", []):
                if not re.fullmatch(r"py3\d+", python):  # the oldest images name no minor version (py3)
                    continue
                tag = f"{version}-{python}"
                found[(repository, tag)] = ImageLibraries(
                    repository, tag, f"{python[2]}.{python[3:]}", ((library, version),),
                    f"sagemaker-core {distribution.version}: image_uri_config/{config_name}.json")
    return found


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
    except InvalidVersion:  # "not installed"
        return False


def _python_difference(image: ImageLibraries, here: str) -> list[str]:
    minor = lambda version: version.split(".")[:2]  # noqa: E731
    return [f"Python {image.python} (here {here})"] if minor(image.python) != minor(here) else []


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
    """How the image's environment built here (its build ``manifest``) differs from the image, in one line."""
    parts = _python_difference(image, manifest["python"]) + [
        f"{name} {pinned} -> {used} ({why})" for name, pinned, used, why in manifest["differences"]]
    installed = ", ".join(f"{name} {version}" for name, version in manifest["installed"].items())
    return (f"the job runs on the {image.name} image's libraries ({installed})"
            + (f"; not as in the image: {'; '.join(parts)}" if parts else ""))
