"""The model-build template's abalone pipeline written with the SageMaker Python SDK v3, as a team would
write it in its seed code: preprocess (SKLearn image, the script downloads its input with boto3), train
(built-in XGBoost), evaluate (a property file), a quality condition, register, or fail.

Build its definition with ``get_pipeline(...).definition()``; ``definition.json`` beside this file is the
same pipeline in the shape SDK v2 writes."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
SKLEARN_VERSION = "0.23-1"  # the template's images: their libraries (xgboost 1.0's pickled model) are its scripts'
XGBOOST_VERSION = "1.0-1"


def get_pipeline(region: str, role: str, default_bucket: str, model_package_group_name: str = "AbalonePackageGroup",
                 pipeline_name: str = "AbalonePipeline", base_job_prefix: str = "Abalone"):
    """The pipeline; building its definition uploads the two scripts to ``default_bucket``."""
    import boto3
    from sagemaker.core import image_uris
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
    from sagemaker.core.training.configs import InputData, OutputDataConfig, S3DataSource
    from sagemaker.core.workflow.conditions import ConditionLessThanOrEqualTo
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.mlops.workflow import ConditionStep, FailStep, ModelStep, ProcessingStep, TrainingStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute

    session = PipelineSession(boto_session=boto3.Session(region_name=region), default_bucket=default_bucket)
    processing_instance_type = ParameterString(name="ProcessingInstanceType", default_value="ml.m5.xlarge")
    processing_instance_count = ParameterInteger(name="ProcessingInstanceCount", default_value=1)
    training_instance_type = ParameterString(name="TrainingInstanceType", default_value="ml.m5.xlarge")
    approval_status = ParameterString(name="ModelApprovalStatus", default_value="PendingManualApproval")
    input_data = ParameterString(name="InputDataUrl",
                                 default_value=f"s3://{default_bucket}/abalone/abalone-dataset.csv")
    mse_threshold = ParameterFloat(name="MseThreshold", default_value=6.0)

    sklearn_image = image_uris.retrieve("sklearn", region, version=SKLEARN_VERSION, instance_type="ml.m5.xlarge")
    xgboost_image = image_uris.retrieve("xgboost", region, version=XGBOOST_VERSION, instance_type="ml.m5.xlarge")

    def processor(image: str, name: str) -> ScriptProcessor:
        return ScriptProcessor(image_uri=image, command=["python3"], instance_type=processing_instance_type,
                               instance_count=processing_instance_count, base_job_name=f"{base_job_prefix}/{name}",
                               role=role, sagemaker_session=session)

    def output(name: str) -> ProcessingOutput:
        return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
            s3_uri=Join(on="/", values=[f"s3://{default_bucket}", base_job_prefix, name]),
            local_path=f"/opt/ml/processing/{name}", s3_upload_mode="EndOfJob"))

    def processing_input(s3_uri, local_path: str) -> ProcessingInput:
        return ProcessingInput(input_name=local_path.rsplit("/", 1)[-1], s3_input=ProcessingS3Input(
            s3_uri=s3_uri, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File"))

    preprocess = ProcessingStep(name="PreprocessAbaloneData", step_args=processor(sklearn_image, "preprocess").run(
        code=str(HERE / "preprocess.py"), arguments=["--input-data", input_data],
        outputs=[output("train"), output("validation"), output("test")]))

    def split(name: str):
        return preprocess.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri

    trainer = ModelTrainer(
        training_image=xgboost_image, role=role, sagemaker_session=session, base_job_name=f"{base_job_prefix}/train",
        compute=Compute(instance_type=training_instance_type, instance_count=1, volume_size_in_gb=30),
        output_data_config=OutputDataConfig(s3_output_path=f"s3://{default_bucket}/{base_job_prefix}/models"),
        hyperparameters={"objective": "reg:linear", "num_round": "50", "max_depth": "5", "eta": "0.2",
                         "gamma": "4", "min_child_weight": "6", "subsample": "0.7", "silent": "0"})
    train = TrainingStep(name="TrainAbaloneModel", step_args=trainer.train(input_data_config=[
        InputData(channel_name=name, content_type="text/csv",
                  data_source=S3DataSource(s3_data_type="S3Prefix", s3_uri=split(name),
                                           s3_data_distribution_type="FullyReplicated"))
        for name in ("train", "validation")]))

    report = PropertyFile(name="AbaloneEvaluationReport", output_name="evaluation", path="evaluation.json")
    evaluate = ProcessingStep(
        name="EvaluateAbaloneModel", property_files=[report],
        step_args=processor(xgboost_image, "evaluate").run(
            code=str(HERE / "evaluate.py"),
            inputs=[processing_input(train.properties.ModelArtifacts.S3ModelArtifacts, "/opt/ml/processing/model"),
                    processing_input(split("test"), "/opt/ml/processing/test")],
            outputs=[output("evaluation")]))

    metrics = ModelMetrics(model_statistics=MetricsSource(content_type="application/json", s3_uri=Join(
        on="/", values=[evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri,
                        "evaluation.json"])))
    register = ModelStep(name="RegisterAbaloneModel", step_args=ModelBuilder(
        s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts, image_uri=xgboost_image,
        role_arn=role, sagemaker_session=session).register(
        model_package_group_name=model_package_group_name, approval_status=approval_status,
        content_types=["text/csv"], response_types=["text/csv"], inference_instances=["ml.t2.medium", "ml.m5.large"],
        transform_instances=["ml.m5.large"], model_metrics=metrics))
    fail = FailStep(name="AbaloneMSEFail", error_message=Join(on=" ", values=["Execution failed due to MSE >",
                                                                             mse_threshold]))
    check = ConditionStep(
        name="CheckMSEAbaloneEvaluation",
        conditions=[ConditionLessThanOrEqualTo(
            left=JsonGet(step_name=evaluate.name, property_file=report, json_path="regression_metrics.mse.value"),
            right=mse_threshold)],
        if_steps=[register], else_steps=[fail])
    return Pipeline(name=pipeline_name, sagemaker_session=session, steps=[preprocess, train, evaluate, check],
                    parameters=[processing_instance_type, processing_instance_count, training_instance_type,
                                approval_status, input_data, mse_threshold])
