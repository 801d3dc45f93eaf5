"""Job environments, built once and cached outside the store (``~/.cache/sagemaker-pipelines-local/environments``
unless ``XDG_CACHE_HOME`` or the ``environments_cache`` setting says otherwise), shared by every store and run:

- an image's environment: the libraries a SageMaker framework image pins, on the image's minor version of
  Python where it is installed here, else on this machine's (``images``, ``interpreters``);
- a job's ``requirements.txt`` on top of its image's environment or of this interpreter's, on the Python of
  what it is on top of (``requirements``);
- a function step's pre-execution commands, run once on top of either (``commands``).

An environment is used only once its build finished, and a failed build leaves nothing behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from pipelines.local import image_libraries
from pipelines.local import job_runtime
from pipelines.local.environments import commands, images, requirements
from pipelines.local.environments.cache import Environment, default_cache, writable_layer

__all__ = ["Environment", "Environments", "IMAGE_LIBRARIES", "default_cache"]

LAYERS = "layers"  # the jobs' own writable environments while they run
IMAGE_LIBRARIES = ("image", "engine")  # what a framework image's job runs with: its image's libraries, or ours


class Environments:
    """The cache of job environments in ``cache`` (None: ``default_cache()`` when first used).

    ``image_libraries``: ``"image"`` runs a framework image's jobs on that image's environment (built
    when missing), ``"engine"`` on this interpreter's libraries.
    """

    def __init__(self, cache: Path | None = None, image_libraries: str = "image"):
        if image_libraries not in IMAGE_LIBRARIES:
            raise ValueError(f"image_libraries must be one of {', '.join(IMAGE_LIBRARIES)}, not {image_libraries!r}")
        self._cache = cache
        self.image_libraries = image_libraries

    @property
    def cache(self) -> Path:
        return self._cache or default_cache()

    def with_requirements(self, requirements_file: Path, log: Callable[[str], None], base: Environment | None = None,
                          runtime: job_runtime.Runtime | None = None) -> Environment:
        """``base`` (None: this interpreter's libraries) plus ``requirements_file``, pip-installed in ``runtime``'s
        sandbox (None: this machine's runtime), reading nothing outside the file's folder."""
        return requirements.with_requirements(self.cache, requirements_file, base, log, runtime)

    def with_commands(self, script: Path, runtime: job_runtime.Runtime, log: Callable[[str], None],
                      base: Environment | None = None) -> Environment:
        """``base`` (None: this interpreter's libraries) after the pre-execution ``script`` ran in it."""
        return commands.with_commands(self.cache, script, base, runtime, log)

    def for_image(self, image_uri: str, log: Callable[[str], None]) -> Environment | None:
        """The environment a job of ``image_uri`` runs with: its image's (built if missing), or None for
        this interpreter's (an image not in the table, or image libraries set to ``engine``)."""
        image = image_libraries.libraries_of(image_uri)
        if image is None or self.image_libraries == "engine":
            return None
        return images.environment_of(self.cache, image, log)

    def job_layer(self, base: Environment | None) -> Environment:
        """A job's own writable environment over ``base`` (None: this interpreter's libraries), in the cache's
        ``layers`` folder, never in a store; the caller removes its ``root`` when the job ends."""
        return writable_layer(self.cache / LAYERS, base)

    def prepare(self, image: image_libraries.ImageLibraries, log: Callable[[str], None]) -> Environment:
        """``image``'s environment, built now if it is not cached."""
        return images.environment_of(self.cache, image, log)

    def cached_image(self, image: image_libraries.ImageLibraries) -> Environment | None:
        """``image``'s environment if it is built for the Python it is made with here, else None."""
        return images.cached(self.cache, image)
