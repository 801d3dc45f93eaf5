"""What the local engine cannot run, as ``validate`` reports it for the local target (the steps ``run`` refuses
before anything runs): a step of a type it has no executor for, and a step whose image it cannot run
(``pipelines.local.runnable_images``). Valid on SageMaker, so ``validate --target sagemaker`` leaves them out."""

from __future__ import annotations

from typing import Any, Mapping

from pipelines.local.graph import instead, walk_steps
from pipelines.validation.problems import Problem


def check(definition: dict[str, Any], image_programs: Mapping[str, str]) -> list[Problem]:
    """A problem (rule ``local``) for every step, condition branches included, that the local engine cannot run
    with ``image_programs`` (image URI -> local command) standing in for images."""
    from pipelines.local import runnable_images
    from pipelines.local.dispatch import EXECUTORS

    steps = [step for step, _ in walk_steps(definition.get("Steps", [])) if isinstance(step, dict)]
    types = [Problem(step.get("Name"), "Type", f"{step['Type']!r} is not supported by the local engine"
                     f"{instead(step['Type'])}", runnable_images.RULE)
             for step in steps if isinstance(step.get("Type"), str) and step["Type"] not in EXECUTORS]
    return types + runnable_images.problems(steps, image_programs)
