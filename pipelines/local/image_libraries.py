"""What the SageMaker framework images ship, per version: their Python and main library pins, read from the
containers' public sources at each version's tag (``aws/sagemaker-scikit-learn-container``: the
``requirements.txt`` and ``docker/<version>/base/Dockerfile.cpu``; ``aws/sagemaker-xgboost-container``: the
same files), so that a local run says exactly how the libraries a job gets differ from its image's.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion

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
           scipy="1.2.2", matplotlib="3.2.1"),
    _entry(XGBOOST, "1.0-1", "3.6.13", "v1.0-1", xgboost="1.0", numpy="1.19.2", pandas="1.1.3", scikit_learn="0.23.2",
           scipy="1.2.2", matplotlib="3.3.2"),
    _entry(XGBOOST, "1.2-1", "3.7.10", "v1.2-1", xgboost="1.2.0", numpy="1.19.2", pandas="1.1.3", scikit_learn="0.23.2",
           scipy="1.5.3", matplotlib="3.3.2"),
    _entry(XGBOOST, "1.2-2", "3.7.10", "v1.2-2", xgboost="1.2.0", numpy="1.20.3", pandas="1.1.3", scikit_learn="0.23.2",
           scipy="1.5.3", matplotlib="3.3.2"),
    _entry(XGBOOST, "1.3-1", "3.7.10", "v1.3-1", xgboost="1.3.3", numpy="1.21.6", pandas="1.2.4", scikit_learn="0.24.1",
           scipy="1.6.2", matplotlib="3.4.1"),
    _entry(XGBOOST, "1.5-1", "3.8.13", "v1.5-1", xgboost="1.5.2", numpy="1.19.2", pandas="1.2.4", scikit_learn="0.24.1",
           scipy="1.6.2", matplotlib="3.4.1"),
    _entry(XGBOOST, "1.7-1", "3.8.13", "v1.7-1", xgboost="1.7.4", numpy="1.19.2", pandas="1.2.4", scikit_learn="0.24.1",
           scipy="1.6.2", matplotlib="3.4.1"),
    _entry(XGBOOST, "3.0-5", "3.10", "v3.0-5", xgboost="3.0.5", numpy="2.1.0", pandas="2.2.3", scikit_learn="1.5.2",
           scipy="1.15.0", matplotlib="3.9.2"),
)}


def libraries_of(image_uri: str) -> ImageLibraries | None:
    """The table's entry for a SageMaker framework image URI, or None for any other image."""
    found = _IMAGE.match(image_uri or "")
    return IMAGES.get((found.group("repository"), found.group("version"))) if found else None


def _installed(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _satisfies(pinned: str, used: str) -> bool:
    """True if ``used`` is the pinned version, or within a pinned range (``>=2.0.0``)."""
    if pinned[:1].isdigit():
        return pinned == used
    try:
        return SpecifierSet(pinned).contains(used)
    except InvalidVersion:
        return False


def differences(image_uri: str) -> str | None:
    """How the libraries a job gets here differ from its image's, in one line; None for an unknown image."""
    image = libraries_of(image_uri)
    if image is None:
        return None
    here = platform.python_version()
    minor = lambda version: version.split(".")[:2]  # noqa: E731
    parts = [f"Python {image.python} (here {here})"] if minor(image.python) != minor(here) else []
    for name, pinned in image.pins:
        used = _installed(name)
        if not _satisfies(pinned, used):
            parts.append(f"{name} {pinned} (here {used})")
    return (f"the {image.repository}:{image.version} image's libraries ({image.source}) differ from this "
            f"interpreter's, which the job runs with: {', '.join(parts)}" if parts else None)
