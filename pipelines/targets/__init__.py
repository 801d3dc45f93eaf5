"""Where a built pipeline runs: SageMaker or the local engine, behind one small interface."""

from __future__ import annotations

from typing import Any, Protocol

from pipelines.lead_scoring import BuiltPipeline
from pipelines.progress import Progress
from pipelines.results import RunResult


class Target(Protocol):
    """Runs a built pipeline with parameter overrides and reports progress."""

    name: str

    def prepare(self) -> BuiltPipeline:
        """The definition this target will run (built from the config, or read from a file)."""
        ...

    def run(self, built: BuiltPipeline, overrides: dict[str, Any], progress: Progress) -> RunResult:
        """Start an execution, watch it (unless told not to) and return its result."""
        ...

    def registry(self) -> Any:
        """The model registry of this target (a ``pipelines.model_registry.ModelRegistry``)."""
        ...
