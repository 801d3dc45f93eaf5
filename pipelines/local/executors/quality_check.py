"""QualityCheck: Model Monitor's data-quality and model-quality checks (the SDK's ``QualityCheckStep``), run as
the processing job the step's Arguments describe, with the engine's own analyzer
(``pipelines.local.monitoring.analyzer``) in the Model Monitor container's place.

As on SageMaker: the step always calculates a new baseline from its input (``CalculatedBaseline*``). Unless
``SkipCheck``, it checks the input against the previous baseline (``SuppliedBaseline*`` if given, else the
``DriftCheckBaselines`` of the latest Approved version in ``ModelPackageGroupName``), writes
``constraint_violations.json`` beside the new baseline, and fails on a violation unless ``FailOnViolation`` is
false. ``BaselineUsedForDriftCheck*`` is the new baseline with ``RegisterNewBaseline``, else the previous one.
"""

from __future__ import annotations

from pipelines.local import job_runtime
from pipelines.local.executors import check_steps, processing
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun
from pipelines.s3uri import join_uri

ANALYZER = "pipelines.local.monitoring.analyzer"
OUTPUT_NAME = "quality_check_output"
SUPPLIED = ("SuppliedBaselineStatistics", "SuppliedBaselineConstraints")
# CheckType -> the section of ModelMetrics / DriftCheckBaselines holding its baseline
SECTIONS = {"DATA_QUALITY": "ModelDataQuality", "MODEL_QUALITY": "ModelQuality"}
NOT_REPRODUCED = ("the Model Monitor analyzer runs as the local engine's own program (pandas and scikit-learn); "
                  "distributions are exact 10-bucket counts where the analyzer keeps Deequ's KLL sketches (no "
                  "sketch is written), and a baseline's per-feature monitoringConfigOverrides are not applied")


def execute(run: StepRun) -> StepOutcome:
    """Calculate the baseline, check against the previous one unless skipped; the step's four baseline
    properties."""
    check_type = check_steps.resolved(run, "CheckType")
    if check_type not in SECTIONS:
        raise StepFailed(f"ClientError: CheckType {check_type!r}: a QualityCheck step's is DATA_QUALITY or "
                         "MODEL_QUALITY")
    skip = check_steps.flag(run, "SkipCheck", False)
    register_new = check_steps.flag(run, "RegisterNewBaseline", False)
    section = SECTIONS[check_type]
    previous = check_steps.previous_baseline(run, SUPPLIED, (f"{section}.Statistics", f"{section}.Constraints"))
    if not skip and previous is None:
        raise check_steps.missing_baseline(run, SUPPLIED, section)
    output_uri = check_steps.output_uri(run.arguments, OUTPUT_NAME, "QualityCheck")
    run.report(f"CheckType = {check_type}: {NOT_REPRODUCED}")
    arguments = run.arguments if skip else check_steps.with_baseline(
        run.arguments, {"statistics": previous[0], "constraints": previous[1]})
    job = processing.run_job(run, arguments, job_runtime.engine_module_command(ANALYZER))
    calculated = (join_uri(output_uri, "statistics.json"), join_uri(output_uri, "constraints.json"))
    used = calculated if register_new or previous is None else previous
    properties = {"CalculatedBaselineStatistics": calculated[0], "CalculatedBaselineConstraints": calculated[1],
                  "BaselineUsedForDriftCheckStatistics": used[0], "BaselineUsedForDriftCheckConstraints": used[1],
                  "CheckType": check_type, "CheckJobArn": job.properties["ProcessingJobArn"],
                  "SkipCheck": skip, "RegisterNewBaseline": register_new}
    return check_steps.outcome(run, properties, output_uri, None if skip else previous[1], "Quality check")

