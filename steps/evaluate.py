"""Evaluate: score the test split with the trained model and write evaluation.json."""

from __future__ import annotations

from typing import Any

from processing.evaluate import LIB_DIR, TRACKING_LIB_DIR
from steps import prepare_data
from steps.context import StepContext

NAME = "Evaluate"
REPORT_NAME = "EvaluationReport"
REPORT_FILE = "evaluation.json"
AUC_JSON_PATH = "binary_classification_metrics.auc.value"
PREDICTIONS_DIR = "/opt/ml/processing/predictions"
AUC_TEXT_JSON_PATH = "lead_scoring_metrics.test_auc_text"  # the same AUC, 4 decimals, for the gate's message


def build(ctx: StepContext, prepare: Any, train: Any, transform: Any = None) -> tuple[Any, Any]:
    """The Evaluate ProcessingStep and the PropertyFile that exposes evaluation.json. With ``transform`` (a
    custom image, which only its own serving can score), it evaluates the ``label,score`` lines that batch
    transform of the test split wrote; otherwise it scores the test split with the built-in XGBoost model."""
    from sagemaker.core.workflow.properties import PropertyFile

    report = PropertyFile(name=REPORT_NAME, output_name="evaluation", path=REPORT_FILE)
    processor = ctx.processor(ctx.image_uri("xgboost", ctx.config.xgboost_version), "evaluate",
                              ctx.mlflow_environment(NAME, install=True))  # the XGBoost image has no mlflow
    # the job's MLflow run, imported by evaluate.py from there (it runs as a lone script)
    tracking = ctx.processing_input("lib-tracking", ctx.code_uri("mlflow_run.py"), TRACKING_LIB_DIR)
    if transform is not None:
        predictions = transform.properties.TransformOutput.S3OutputPath
        inputs = [ctx.processing_input("predictions", predictions, PREDICTIONS_DIR), tracking]
        read = ["--predictions-dir", PREDICTIONS_DIR]
    else:
        inputs = [
            ctx.processing_input("model", train.properties.ModelArtifacts.S3ModelArtifacts, "/opt/ml/processing/model"),
            ctx.processing_input("test", prepare_data.split_uri(prepare, "test"), "/opt/ml/processing/test"),
            ctx.processing_input("lib", ctx.code_uri("archives.py"), LIB_DIR),  # the one archive extractor
            tracking,
        ]
        read = ["--model-dir", "/opt/ml/processing/model", "--test-dir", "/opt/ml/processing/test"]
    step_args = processor.run(
        code=ctx.code_uri("evaluate.py"),
        inputs=inputs,
        outputs=[ctx.processing_output(NAME, "evaluation", "/opt/ml/processing/evaluation")],
        arguments=[
            *read,
            "--output-dir", "/opt/ml/processing/evaluation",
            # what the report says it covers; none of them changes while the step's inputs do not (its cache key)
            "--model-uri", train.properties.ModelArtifacts.S3ModelArtifacts,
            "--training-job", train.properties.TrainingJobName,
            "--test-uri", prepare_data.split_uri(prepare, "test"),
            "--source-revision", ctx.config.source_revision,
        ],
    )
    from sagemaker.mlops.workflow import ProcessingStep

    step = ProcessingStep(
        name=NAME,
        display_name="Evaluate model",
        description=("Evaluate the batch transform's scores of the test split" if transform is not None else
                     "Score the test split") + "; write evaluation.json (SageMaker model quality format, "
        "plus lift and capture in the top decile) with ROC, PR and lift charts and an HTML report.",
        step_args=step_args,
        property_files=[report],
        cache_config=ctx.cache_config(),
        retry_policies=ctx.retry_policies(),
    )
    return step, report


def report_uri(step: Any) -> Any:
    """S3 URI of evaluation.json written by the Evaluate step."""
    from sagemaker.core.workflow.functions import Join

    return Join(on="/", values=[step.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri, REPORT_FILE])
