"""The one hosting layer: a model container's serving behaviour, used by Transform and by local endpoints.

A ``Predictor`` answers one ``/invocations`` request of a model container: body, content type and
accept in, response body out, or ``InvocationError`` carrying the HTTP status the container
answers. ``predictor_for`` picks the implementation for a container image; today the built-in
XGBoost container is served in-process with its CSV rules (``inference.xgboost_csv``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

from inference.xgboost_csv import MAX_PAYLOAD_BYTES, InvocationError, invoke, load_model

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

    def invoke(self, body: bytes, content_type: str = "text/csv", accept: str = "text/csv") -> bytes:
        """The response body; InvocationError with the container's status for a refused request."""


class XGBoostPredictor:
    """The built-in XGBoost container's ``text/csv`` serving, in-process."""

    def __init__(self, model_archive: Path):
        self.boosters: list[Any] = load_model(model_archive)

    def invoke(self, body: bytes, content_type: str = "text/csv", accept: str = "text/csv") -> bytes:
        return invoke(self.boosters, body, content_type, accept)


def is_builtin_xgboost(image: str) -> bool:
    """True for the SageMaker-provided XGBoost algorithm image of any region and version."""
    return bool(BUILTIN_XGBOOST.match(image))


def predictor_for(image: str, model_archive: Path) -> Predictor:
    """A loaded predictor for a container ``image`` and its ``model.tar.gz``.

    UnservableImageError for an image served by nothing here; ModelLoadError, with the loader's first
    line, when the model cannot be loaded.
    """
    if not is_builtin_xgboost(image):
        raise UnservableImageError(f"image {image!r} is not the built-in XGBoost image; local serving supports only "
                                   "that one")
    try:
        return XGBoostPredictor(model_archive)
    except InvocationError as exc:
        raise ModelLoadError(f"the model could not be loaded: {str(exc).split(': ', 1)[-1]}") from None
    except Exception as exc:  # noqa: BLE001 - tarfile, zlib and xgboost each raise their own kind
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"the model could not be loaded: {first}") from None
