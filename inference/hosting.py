"""The one hosting layer: a model container's serving behaviour, used by Transform and by local endpoints.

A ``Predictor`` answers one ``/invocations`` request of a model container: body, content type and
accept in, response body out, or ``InvocationError`` carrying the HTTP status the container
answers. ``predictor_for`` picks the implementation for a container image: the built-in XGBoost
container is served in-process with its CSV rules (``inference.xgboost_csv``; a model file in an older
image's format is read through that image's environment, ``inference.model_formats``); an image with a local
program (our own image, or one mapped with ``local_image_programs``) by that program's ``serve`` on a
loopback port (``inference.container_predictor``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from inference.image_programs import OWN_IMAGE_REPOSITORY, image_program
from inference.model_formats import converter
from inference.xgboost_csv import MAX_PAYLOAD_BYTES, InvocationError, invoke, load_model
from pipelines.errors import EnvironmentBuildError
from pipelines.local import job_runtime
from pipelines.local.environments import Environments
from processing.archives import ArchiveError

# the SageMaker-provided XGBoost algorithm image, any registry account, region and version
BUILTIN_XGBOOST = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/sagemaker-xgboost:[\w.-]+$")

__all__ = ["MAX_PAYLOAD_BYTES", "HostingError", "InvocationError", "ModelLoadError", "Predictor",
           "UnservableImageError", "is_builtin_xgboost", "predictor_for"]


class HostingError(Exception):
    """A model cannot be served: its image has no local implementation, or its artifact cannot be loaded."""


class UnservableImageError(HostingError):
    """The image has no local serving implementation."""


class ModelLoadError(HostingError):
    """The model artifact cannot be loaded (not a tarball, no model file, not a model)."""


class Predictor(Protocol):
    """One model, loaded, answering requests as its container's ``/invocations`` does."""

    execution_parameters: dict[str, Any]  # what GET /execution-parameters answers ({} if nothing)

    def invoke(self, body: bytes, content_type: str = "text/csv", accept: str = "text/csv") -> bytes:
        """The response body; InvocationError with the container's status for a refused request."""

    def close(self) -> None:
        """Release what serving the model holds (a server process, files)."""


class XGBoostPredictor:
    """The built-in XGBoost container's ``text/csv`` serving, in-process."""

    def __init__(self, model_archive: Path, convert: Callable[[Path], Path] | None = None):
        self.boosters: list[Any] = load_model(model_archive, convert)
        self.execution_parameters = {"MaxConcurrentTransforms": os.cpu_count() or 1, "BatchStrategy": "MULTI_RECORD",
                                     "MaxPayloadInMB": MAX_PAYLOAD_BYTES // (1024 * 1024)}

    def invoke(self, body: bytes, content_type: str = "text/csv", accept: str = "text/csv") -> bytes:
        return invoke(self.boosters, body, content_type, accept)

    def close(self) -> None:
        return None


def is_builtin_xgboost(image: str) -> bool:
    """True for the SageMaker-provided XGBoost algorithm image of any region and version."""
    return bool(BUILTIN_XGBOOST.fullmatch(image))


def predictor_for(image: str, model_archive: Path, programs: Mapping[str, str] | None = None,
                  runtime: job_runtime.Runtime | None = None, environments: Environments | None = None,
                  log_file: Path | None = None) -> Predictor:
    """A loaded predictor for a container ``image`` and its ``model.tar.gz``; close it when done. A local
    ``serve`` program's output is appended to ``log_file`` (None: a file of its own, removed with it).

    UnservableImageError for an image served by nothing here; ModelLoadError, with the loader's first
    line, when the model cannot be loaded.
    """
    if not is_builtin_xgboost(image):
        program = image_program(image, programs or {})
        if program is None:
            raise UnservableImageError(
                f"image {image!r} is neither the built-in XGBoost image nor this repository's own image "
                f"({OWN_IMAGE_REPOSITORY}), and no local program is mapped to it (config local_image_programs, "
                f"flag --local-image-program '{image}=COMMAND', COMMAND being what the image runs as `serve`)")
        from inference.container_predictor import ContainerPredictor, ContainerStartError

        try:
            return ContainerPredictor(program, model_archive, runtime or job_runtime.automatic(),
                                      environments or Environments(), log_file=log_file)
        except (ContainerStartError, OSError, ArchiveError, EnvironmentBuildError) as exc:
            raise ModelLoadError(f"the model could not be served by {program.describe()} serve: {exc}") from None
    try:
        # a model file of an older image's format is read through that image's environment
        return XGBoostPredictor(model_archive, converter(image, runtime or job_runtime.automatic(),
                                                         environments or Environments()))
    except InvocationError as exc:
        raise ModelLoadError(f"the model could not be loaded: {str(exc).split(': ', 1)[-1]}") from None
    except Exception as exc:  # noqa: BLE001 - tarfile, zlib and xgboost each raise their own kind
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"the model could not be loaded: {first}") from None
