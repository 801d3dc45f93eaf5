"""ClarifyCheck: SageMaker Clarify's bias checks of a dataset and of a model's predictions (the SDK's
``ClarifyCheckStep`` with a ``DataBiasCheckConfig`` or a ``ModelBiasCheckConfig``), run as the processing job the
step's Arguments describe, with the engine's own Clarify job (``pipelines.local.clarify.analysis``) in the
Clarify container's place, in an environment of its own holding Clarify's open-source bias library
(``smclarify``), built once and cached like image environments. A model check's model (the step's
``ModelName``) is served on loopback for the job (``pipelines.local.model_server``), as Clarify's shadow
endpoint serves it.

The baseline rules are QualityCheck's: ``CalculatedBaselineConstraints`` is the new ``analysis.json``; unless
``SkipCheck``, its metrics are checked against the previous baseline (``SuppliedBaselineConstraints``, else the
``DriftCheckBaselines.Bias.Pre/PostTrainingConstraints`` of the latest Approved version of
``ModelPackageGroupName``) and a metric further from no bias than the baseline's fails the step unless
``FailOnViolation`` is false. A MODEL_EXPLAINABILITY check computes SHAP values with SHAP's Kernel explainer,
and its feature ranking drifting from the baseline's (nDCG below 0.9) is the violation.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pipelines.local import job_runtime
from pipelines.local.model_server import ModelServingError, serving
from pipelines.local.runnable_images import clarify_refusal
from pipelines.local.executors import check_steps, processing
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun, requirements_environment
from pipelines.s3uri import join_uri

PROGRAM = "pipelines.local.clarify.analysis"
REQUIREMENTS = Path(__file__).resolve().parents[1] / "clarify" / "requirements.txt"
OUTPUT_NAME = "analysis_result"
SUPPLIED = ("SuppliedBaselineConstraints",)
# CheckType -> where DriftCheckBaselines keeps its baseline; the only one run locally
RUN_LOCALLY = {"DATA_BIAS": "Bias.PreTrainingConstraints", "MODEL_BIAS": "Bias.PostTrainingConstraints",
               "MODEL_EXPLAINABILITY": "Explainability.Constraints"}
NOT_REPRODUCED = ("the Clarify container runs as the local engine's own program with smclarify (Clarify's bias "
                  "library) and SHAP; SHAP's sampling and k-means follow the config's seed, so values differ from "
                  "Clarify's by sampling; the report (report.ipynb, .html, .pdf) is not written")


def execute(run: StepRun) -> StepOutcome:
    """Compute the dataset's bias metrics, check them against the previous baseline unless skipped; the step's
    two baseline properties."""
    check_type = check_steps.resolved(run, "CheckType")
    if check_type not in RUN_LOCALLY:
        refused = clarify_refusal(check_type)
        raise StepFailed(f"ClientError: CheckType {refused[1] if refused else repr(check_type)}")
    skip = check_steps.flag(run, "SkipCheck", False)
    register_new = check_steps.flag(run, "RegisterNewBaseline", False)
    previous = check_steps.previous_baseline(run, SUPPLIED, (RUN_LOCALLY[check_type],))
    if not skip and previous is None:
        raise check_steps.missing_baseline(run, SUPPLIED, RUN_LOCALLY[check_type])
    output_uri = check_steps.output_uri(run.arguments, OUTPUT_NAME, "ClarifyCheck")
    environment = requirements_environment(run, REQUIREMENTS, run.log, "the Clarify job's environment: ")
    run.report(f"CheckType = {check_type}: {NOT_REPRODUCED}")
    arguments = run.arguments if skip else check_steps.with_baseline(run.arguments, {"constraints": previous[0]})
    with _model(run, check_type) as url:
        if url:
            arguments = {**arguments, "Environment": {**(arguments.get("Environment") or {}), "model_url": url}}
        job = processing.run_job(run, arguments, job_runtime.engine_module_command(PROGRAM), environment)
    calculated = join_uri(output_uri, "analysis.json")
    properties = {"CalculatedBaselineConstraints": calculated,
                  "BaselineUsedForDriftCheckConstraints": calculated if register_new or previous is None
                  else previous[0],
                  "CheckType": check_type, "CheckJobArn": job.properties["ProcessingJobArn"], "SkipCheck": skip,
                  "RegisterNewBaseline": register_new}
    return check_steps.outcome(run, properties, output_uri, None if skip else previous[0], "Clarify check")


@contextmanager
def _model(run: StepRun, check_type: str) -> Iterator[str | None]:
    """The URL the step's model is served at for the job (None for a check of the data alone)."""
    if check_type == "DATA_BIAS":
        yield None
        return
    name = check_steps.resolved(run, "ModelName")
    if not isinstance(name, str) or not name:
        raise StepFailed(f"ClientError: ModelName: a {check_type} check names the model whose predictions it checks")
    try:
        with serving(run.store, name, dict(run.image_programs), run.runtime, run.environments) as url:
            run.log(f"model {name} served for the Clarify job at {url}")
            yield url
    except ModelServingError as exc:
        raise StepFailed(f"ClientError: ModelName: {exc}") from None

