"""PrepareData: raw label-first CSV -> train (sharded) / validation / test splits."""

from __future__ import annotations

from typing import Any

from steps.context import SKLEARN_VERSION, StepContext

NAME = "PrepareData"
SPLITS = ("train", "validation", "test")
RAW_DIR = "/opt/ml/processing/input/raw"


def build(ctx: StepContext) -> Any:
    """The PrepareData ProcessingStep running processing/preprocess.py in the SKLearn image."""
    from sagemaker.mlops.workflow import ProcessingStep

    processor = ctx.processor(ctx.image_uri("sklearn", SKLEARN_VERSION), "prepare-data")
    raw = (ctx.redshift_input("raw", RAW_DIR) if ctx.config.reads_redshift
           else ctx.processing_input("raw", ctx.params["InputDataUrl"], RAW_DIR))
    step_args = processor.run(
        code=ctx.code_uri("preprocess.py"),
        inputs=[raw],
        outputs=[ctx.processing_output(NAME, split, f"/opt/ml/processing/output/{split}") for split in SPLITS]
        + [ctx.processing_output(NAME, "summary", "/opt/ml/processing/output/summary")],
        arguments=[
            "--input-dir", RAW_DIR,
            "--output-dir", "/opt/ml/processing/output",
            "--train-shards", ctx.params["TrainShardCount"].to_string(),
            "--header", ctx.config.input_header,
            "--bad-rows", ctx.config.bad_rows,
            "--max-bad-rows", str(ctx.config.max_bad_rows),
            "--max-bad-percent", f"{ctx.config.max_bad_percent:g}",
            "--seed", "42",
        ],
    )
    from steps.sdk_fixes import DatasetDefinitionProcessingStep

    step_class = DatasetDefinitionProcessingStep if ctx.config.reads_redshift else ProcessingStep
    return step_class(
        name=NAME,
        display_name="Prepare data",
        description="Validate the raw label-first CSV and split it (stratified, seeded) into "
        "train (written as TrainShardCount files), validation and test, headerless and label-first.",
        step_args=step_args,
        cache_config=ctx.cache_config(),
        retry_policies=ctx.retry_policies(),
    )


def split_uri(step: Any, split: str) -> Any:
    """The S3 URI property of one of PrepareData's outputs."""
    return step.properties.ProcessingOutputConfig.Outputs[split].S3Output.S3Uri
