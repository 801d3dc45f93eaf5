"""Train: the built-in XGBoost algorithm (or a custom image) on the train/validation splits."""

from __future__ import annotations

from typing import Any

from steps import prepare_data
from steps.context import StepContext

NAME = "Train"


def hyperparameters(ctx: StepContext) -> dict[str, Any]:
    """Hyperparameters as strings (SageMaker passes them to the container as strings): the built-in
    algorithm's, or our own image's (container/hyperparameters.py) in custom mode."""
    p = ctx.params
    shared = {
        "num_round": p["NumRound"].to_string(),
        "max_depth": p["MaxDepth"].to_string(),
        "eta": p["Eta"].to_string(),
        "early_stopping_rounds": p["EarlyStoppingRounds"].to_string(),
        "subsample": p["SubSample"].to_string(),
        "min_child_weight": "1",
        "seed": "42",
    }
    if ctx.config.training_mode == "custom":  # our image: binary logistic, hist and AUC are built in
        custom = {**shared, "calibration": ctx.config.calibration}
        if ctx.config.monotone_constraints:
            custom["monotone_constraints"] = ctx.config.monotone_constraints
        return custom
    return {"objective": "binary:logistic", "eval_metric": "auc", "tree_method": "hist", **shared}


def build(ctx: StepContext, prepare: Any) -> Any:
    """The Train TrainingStep; train channel ShardedByS3Key, validation FullyReplicated."""
    from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig, S3DataSource, StoppingCondition
    from sagemaker.mlops.workflow import TrainingStep
    from sagemaker.train import ModelTrainer

    from steps.sdk_fixes import MlflowTrainingStep

    trainer = ModelTrainer(
        role=ctx.role,
        training_image=ctx.training_image(),
        sagemaker_session=ctx.session,
        base_job_name=f"{ctx.config.base_prefix.replace('/', '-')}-train",
        compute=Compute(
            instance_type=ctx.params["TrainingInstanceType"],
            instance_count=ctx.params["TrainingInstanceCount"],
            volume_kms_key_id=ctx.config.kms_key_arn,
            volume_size_in_gb=30,
        ),
        networking=ctx.networking(),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=ctx.config.max_runtime_seconds),
        output_data_config=OutputDataConfig(
            s3_output_path=f"{ctx.config.s3_prefix()}/models", kms_key_id=ctx.config.kms_key_arn
        ),
        hyperparameters=hyperparameters(ctx),
        # our image logs each round to MLflow itself; the built-in algorithm's metrics are logged by SageMaker
        environment=ctx.mlflow_environment(NAME) if ctx.config.training_mode == "custom" else {},
    )

    def channel(name: str, distribution: str) -> Any:
        return InputData(
            channel_name=name,
            content_type="text/csv",
            data_source=S3DataSource(
                s3_data_type="S3Prefix",
                s3_uri=prepare_data.split_uri(prepare, name),
                s3_data_distribution_type=distribution,
            ),
        )

    step_args = trainer.train(input_data_config=[channel("train", "ShardedByS3Key"), channel("validation", "FullyReplicated")])
    run = ctx.mlflow_run(NAME)
    kind = MlflowTrainingStep if run is not None and ctx.config.training_mode != "custom" else TrainingStep
    return kind(
        name=NAME,
        display_name="Train XGBoost",
        description="Binary XGBoost (objective binary:logistic, eval metric auc) with early stopping "
        "on the validation channel; distributed over TrainingInstanceCount instances.",
        step_args=step_args,
        cache_config=ctx.cache_config(),
        retry_policies=ctx.retry_policies(),
        **({"mlflow_config": run} if kind is MlflowTrainingStep else {}),
    )
