"""One executor per definition step Type; each is ``execute(run: StepRun) -> StepOutcome``."""
