"""The table from a definition step ``Type`` to its executor."""

from __future__ import annotations

from typing import Callable

from pipelines.local.executors import (callback, clarify_check, condition, fail, lambda_step, model, processing,
                                       quality_check, register_model, training, transform, tuning)
from pipelines.local.executors.base import StepOutcome, StepRun

EXECUTORS: dict[str, Callable[[StepRun], StepOutcome]] = {
    "Processing": processing.execute,
    "Training": training.execute,
    "Transform": transform.execute,
    "Model": model.execute,
    "RegisterModel": register_model.execute,
    "Condition": condition.execute,
    "Fail": fail.execute,
    "Lambda": lambda_step.execute,
    "Callback": callback.execute,
    "Tuning": tuning.execute,
    "QualityCheck": quality_check.execute,
    "ClarifyCheck": clarify_check.execute,
}
# Types whose Arguments are evaluated by the executor itself (branches must not be resolved early).
LAZY_ARGUMENTS = {"Condition"}
