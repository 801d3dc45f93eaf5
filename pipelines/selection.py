"""Which steps an execution runs: all of them, or a selection (``--selective-steps``, SageMaker's
``SelectiveExecutionConfig``) with the execution the other steps' outputs come from."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.errors import ConfigError

MAX_SELECTED = 50  # SelectiveExecutionConfig.SelectedSteps: 1 to 50 items


@dataclass(frozen=True)
class Selection:
    """The steps to run, and the execution (id; None: the latest of the pipeline) their inputs come from."""

    steps: tuple[str, ...]
    reference: str | None = None


def parse(text: str | None, reference: str | None) -> Selection | None:
    """``--selective-steps A,B`` and ``--reference-execution ID`` as a Selection (None without steps)."""
    if not text:
        if reference:
            raise ConfigError("--reference-execution needs --selective-steps (the steps to run)")
        return None
    steps = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not 1 <= len(steps) <= MAX_SELECTED:
        raise ConfigError(f"--selective-steps takes 1 to {MAX_SELECTED} step names (SageMaker's limit), got {len(steps)}")
    return Selection(steps, reference)
