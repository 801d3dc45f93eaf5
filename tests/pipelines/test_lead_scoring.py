"""The pipeline definition: structure, security settings, parameters, determinism."""

from __future__ import annotations

import json

import pytest

from pipelines.config import build_config, read_config_file
from pipelines.lead_scoring import build, get_pipeline
from pipelines.local.graph import walk_steps
from pipelines.errors import ConfigError
from pipelines.parameters import SPECS
from tests.conftest import KMS, ROLE, full_config


@pytest.fixture(scope="module")
def built():
    return build(full_config())


@pytest.fixture(scope="module")
def steps(built):
    """Every step, with condition branches flattened, by name."""
    found = {}

    def walk(items):
        for step in items:
            found[step["Name"]] = step
            walk(step.get("Arguments", {}).get("IfSteps", []))
            walk(step.get("Arguments", {}).get("ElseSteps", []))

    walk(built.definition_dict["Steps"])
    return found


def test_step_names_and_types(steps):
    assert {name: s["Type"] for name, s in steps.items()} == {
        "PrepareData": "Processing", "Train": "Training", "Evaluate": "Processing", "CheckQuality": "Condition",
        "RegisterModel": "RegisterModel", "CreateModel": "Model", "BatchTransform": "Transform",
        "QualityGateFailed": "Fail",
    }
    assert all(s.get("DisplayName") and s.get("Description") for s in steps.values())


def _references(value):
    text = json.dumps(value)
    return {name for name in ("PrepareData", "Train", "Evaluate", "CreateModel") if f'"Steps.{name}.' in text}


def test_dependency_edges(steps):
    assert _references(steps["Train"]["Arguments"]) == {"PrepareData"}
    assert _references(steps["Evaluate"]["Arguments"]) == {"PrepareData", "Train"}
    assert _references(steps["CheckQuality"]["Arguments"]["Conditions"]) == {"Evaluate"}
    assert _references(steps["RegisterModel"]["Arguments"]) == {"Train", "Evaluate"}
    assert _references(steps["BatchTransform"]["Arguments"]) == {"PrepareData", "CreateModel"}


def test_quality_gate_branches(steps):
    gate = steps["CheckQuality"]["Arguments"]
    assert [s["Name"] for s in gate["IfSteps"]] == ["RegisterModel", "CreateModel", "BatchTransform"]
    assert [s["Name"] for s in gate["ElseSteps"]] == ["QualityGateFailed"]
    (condition,) = gate["Conditions"]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "binary_classification_metrics.auc.value"
    assert condition["RightValue"] == {"Get": "Parameters.AucThreshold"}
    message = json.dumps(steps["QualityGateFailed"]["Arguments"]["ErrorMessage"])
    assert "Parameters.AucThreshold" in message and "Std:JsonGet" in message


def test_every_job_is_encrypted_and_in_the_vpc(steps):
    for name in ("PrepareData", "Evaluate"):
        args = steps[name]["Arguments"]
        assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KMS
        assert args["ProcessingOutputConfig"]["KmsKeyId"] == KMS
        assert args["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True
        assert args["NetworkConfig"]["VpcConfig"]["Subnets"] == ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
        assert args["RoleArn"] == ROLE
        assert args["StoppingCondition"]["MaxRuntimeInSeconds"] > 0
    train = steps["Train"]["Arguments"]
    assert train["ResourceConfig"]["VolumeKmsKeyId"] == KMS
    assert train["OutputDataConfig"]["KmsKeyId"] == KMS
    assert train["EnableInterContainerTrafficEncryption"] is True
    assert train["VpcConfig"]["SecurityGroupIds"] == ["sg-0123456789abcdef0"]
    assert train["RoleArn"] == ROLE and train["StoppingCondition"]["MaxRuntimeInSeconds"] > 0
    transform = steps["BatchTransform"]["Arguments"]
    assert transform["TransformOutput"]["KmsKeyId"] == KMS
    assert transform["TransformResources"]["VolumeKmsKeyId"] == KMS
    model = steps["CreateModel"]["Arguments"]
    assert model["ExecutionRoleArn"] == ROLE and model["EnableNetworkIsolation"] is True
    assert model["VpcConfig"]["Subnets"]


def test_without_vpc_no_vpc_config_is_emitted():
    definition = build(full_config(subnets=[], security_group_ids=[])).definition
    assert "VpcConfig" not in definition
    assert "EnableInterContainerTrafficEncryption" in definition


def test_train_channels(steps):
    channels = {c["ChannelName"]: c for c in steps["Train"]["Arguments"]["InputDataConfig"]}
    assert channels["train"]["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert channels["validation"]["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "FullyReplicated"
    assert {c["ContentType"] for c in channels.values()} == {"text/csv"}
    algorithm = steps["Train"]["Arguments"]["AlgorithmSpecification"]
    assert algorithm["TrainingImage"].endswith("/sagemaker-xgboost:1.7-1")
    hp = steps["Train"]["Arguments"]["HyperParameters"]
    assert hp["objective"] == "binary:logistic" and hp["eval_metric"] == "auc"


def test_custom_training_image_is_used_to_train_register_and_transform():
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/lead-scoring-xgboost:3f2a9c1d0b7e"
    definition = build(full_config(training_mode="custom", training_image=image, calibration="platt",
                                   monotone_constraints="(1,0,-1)")).definition_dict
    steps = {s["Name"]: s for s, _ in walk_steps(definition["Steps"])}
    train = steps["Train"]["Arguments"]
    assert train["AlgorithmSpecification"]["TrainingImage"] == image
    assert train["HyperParameters"]["calibration"] == "platt"
    assert train["HyperParameters"]["monotone_constraints"] == "(1,0,-1)"
    assert "objective" not in train["HyperParameters"]  # our image's hyperparameters, parsed strictly by it
    containers = steps["RegisterModel"]["Arguments"]["InferenceSpecification"]["Containers"]
    assert [c["Image"] for c in containers] == [image]
    assert steps["CreateModel"]["Arguments"]["PrimaryContainer"]["Image"] == image


def test_custom_mode_hyperparameters_are_the_ones_our_image_accepts():
    from container.hyperparameters import parse
    from pipelines.local.expressions import Context, resolve

    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/lead-scoring-xgboost:1"
    definition = build(full_config(training_mode="custom", training_image=image)).definition_dict
    train = next(s for s in definition["Steps"] if s["Name"] == "Train")["Arguments"]
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    resolved = resolve(train["HyperParameters"], Context(defaults, {}, {}))
    assert parse(resolved).calibration == "isotonic"


def test_every_parameter_is_declared_and_used(built):
    definition = built.definition_dict
    declared = {p["Name"] for p in definition["Parameters"]}
    assert declared == {s.name for s in SPECS}
    text = json.dumps(definition["Steps"])
    assert [n for n in declared if f'"Parameters.{n}"' not in text] == []


def test_batch_transform_settings(steps):
    args = steps["BatchTransform"]["Arguments"]
    assert args["BatchStrategy"] == "MultiRecord" and args["MaxPayloadInMB"] == 6
    assert args["TransformInput"]["SplitType"] == "Line"
    assert args["TransformOutput"]["AssembleWith"] == "Line"
    assert args["DataProcessing"] == {"InputFilter": "$[1:]", "OutputFilter": "$[0,-1]", "JoinSource": "Input"}
    assert "Execution.PipelineExecutionId" in json.dumps(args["TransformOutput"]["S3OutputPath"])


def test_registration(steps):
    args = steps["RegisterModel"]["Arguments"]
    assert args["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    assert args["ModelPackageGroupName"] == "LeadScoringModels"
    assert "evaluation.json" in json.dumps(args["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    assert args["CustomerMetadataProperties"]["SourceRevision"] == "abc123"
    assert args["CustomerMetadataProperties"]["PipelineExecutionId"] == {"Get": "Execution.PipelineExecutionId"}
    spec = args["InferenceSpecification"]
    assert spec["SupportedContentTypes"] == ["text/csv"] and spec["SupportedTransformInstanceTypes"]


def test_caching_retries_and_experiment_config(built, steps):
    for name in ("PrepareData", "Train", "Evaluate", "BatchTransform"):
        assert steps[name]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}
        kinds = {t for policy in steps[name]["RetryPolicies"] for t in policy["ExceptionType"]}
        assert {"SageMaker.CAPACITY_ERROR", "SageMaker.JOB_INTERNAL_ERROR", "Step.THROTTLING"} <= kinds
    assert built.definition_dict["PipelineExperimentConfig"]["TrialName"] == {"Get": "Execution.PipelineExecutionId"}
    disabled = build(full_config(enable_caching=False)).definition_dict
    assert disabled["Steps"][0]["CacheConfig"]["Enabled"] is False


def test_two_builds_are_byte_identical(built):
    assert build(full_config()).definition == built.definition


def test_code_is_content_addressed(built):
    uris = {u.local_path.name: u.s3_uri for u in built.uploads}
    assert set(uris) == {"preprocess.py", "evaluate.py", "archives.py", "mlflow_run.py"}
    assert all(uri.startswith("s3://lead-bucket/lead-scoring/code/") for uri in uris.values())
    assert uris["preprocess.py"] in built.definition
    evaluate = next(s for s in json.loads(built.definition)["Steps"] if s["Name"] == "Evaluate")
    lib = next(i for i in evaluate["Arguments"]["ProcessingInputs"] if i["InputName"] == "lib")
    assert lib["S3Input"]["S3Uri"] == uris["archives.py"]  # the archive extractor evaluate.py imports
    assert lib["S3Input"]["LocalPath"] == "/opt/ml/processing/input/lib"
    tracking = next(i for i in evaluate["Arguments"]["ProcessingInputs"] if i["InputName"] == "lib-tracking")
    assert tracking["S3Input"]["S3Uri"] == uris["mlflow_run.py"]  # the job's MLflow run, beside it


def test_get_pipeline_needs_role_and_bucket():
    with pytest.raises(ConfigError, match="role ARN is not set"):
        get_pipeline(full_config(role_arn=None))
    with pytest.raises(ConfigError, match="bucket is not set"):
        build(full_config(bucket=None))
    assert get_pipeline(full_config()).name == "LeadScoringPipeline"


REDSHIFT = {"data_source": "redshift", "redshift_cluster_id": "leads-dw", "redshift_database": "marketing",
            "redshift_db_user": "ml_reader", "redshift_query": "SELECT converted, page_views, sessions FROM leads",
            "redshift_cluster_role_arn": "arn:aws:iam::123456789012:role/RedshiftUnload"}


def test_redshift_option_reads_prepare_data_input_through_a_dataset_definition():
    built = build(full_config(**REDSHIFT))
    prepare = built.definition_dict["Steps"][0]
    raw = next(i for i in prepare["Arguments"]["ProcessingInputs"] if i["InputName"] == "raw")
    assert "S3Input" not in raw
    assert raw["DatasetDefinition"] == {
        "RedshiftDatasetDefinition": {
            "ClusterId": "leads-dw", "Database": "marketing", "DbUser": "ml_reader",
            "QueryString": "SELECT converted, page_views, sessions FROM leads",
            "ClusterRoleArn": "arn:aws:iam::123456789012:role/RedshiftUnload",
            "OutputS3Uri": "s3://lead-bucket/lead-scoring/redshift-unload/", "OutputFormat": "CSV",
            "KmsKeyId": KMS, "OutputCompression": "GZIP"},
        "LocalPath": "/opt/ml/processing/input/raw", "DataDistributionType": "FullyReplicated", "InputMode": "File"}
    # the input no longer comes from a prefix: InputDataUrl is not offered as a parameter
    assert "InputDataUrl" not in [p["Name"] for p in built.definition_dict["Parameters"]]
    assert "InputDataUrl" not in built.definition
    # temporary credentials for DbUser through the cluster role: nothing secret anywhere
    for word in ("Password", "SecretArn", "AccessKey"):
        assert word.lower() not in built.definition.lower()


def test_redshift_option_names_what_is_missing():
    with pytest.raises(ConfigError, match="data_source 'redshift' needs redshift_query, redshift_cluster_role_arn"):
        full_config(**{**REDSHIFT, "redshift_query": None, "redshift_cluster_role_arn": None})
    with pytest.raises(ConfigError, match="redshift_output_s3_uri 'leads/' must be an s3:// URI"):
        full_config(**REDSHIFT, redshift_output_s3_uri="leads/")


def test_prepare_data_policies_come_from_the_config(steps, tmp_path):
    default = steps["PrepareData"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert default[default.index("--header") + 1] == "absent" and default[default.index("--bad-rows") + 1] == "fail"
    config_file = tmp_path / "c.toml"
    config_file.write_text('input_header = "present"\nbad_rows = "skip"\nmax_bad_rows = 5\nmax_bad_percent = "2.5"\n')
    values = {"role_arn": ROLE, "bucket": "lead-bucket", **read_config_file(config_file)}
    arguments = build(build_config(("c.toml", values))).definition_dict["Steps"][0]["Arguments"]
    got = arguments["AppSpecification"]["ContainerArguments"]
    assert got[got.index("--header"):got.index("--seed")] == [
        "--header", "present", "--bad-rows", "skip", "--max-bad-rows", "5", "--max-bad-percent", "2.5"]


MLFLOW_SERVER = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/lead-scoring"


def test_a_configured_mlflow_tracking_server_is_the_definitions_mlflow_config(built):
    from pipelines.batch_scoring import build as build_scoring

    assert built.definition_dict.get("MlflowConfig") is None  # none configured: nothing is tracked on SageMaker
    tracked = build(full_config(mlflow_resource_arn=MLFLOW_SERVER))
    assert tracked.definition_dict["MlflowConfig"] == {"MlflowResourceArn": MLFLOW_SERVER,
                                                       "MlflowExperimentName": "LeadScoringPipeline"}
    named = build_scoring(full_config(mlflow_resource_arn=MLFLOW_SERVER, mlflow_experiment_name="lead-scoring-q4"))
    assert named.definition_dict["MlflowConfig"]["MlflowExperimentName"] == "lead-scoring-q4"


RUN_NAME = {"Std:Join": {"On": "-", "Values": [{"Get": "Execution.PipelineExecutionId"}, "{step}"]}}


def test_with_a_tracking_server_train_and_evaluate_log_to_its_run_of_the_execution(built):
    steps = {s["Name"]: s["Arguments"] for s in built.definition_dict["Steps"]}
    assert "MlflowConfig" not in steps["Train"] and "MLFLOW_TRACKING_URI" not in steps["Evaluate"]["Environment"]
    tracked = build(full_config(mlflow_resource_arn=MLFLOW_SERVER, mlflow_experiment_name="q4"))
    steps = {s["Name"]: s["Arguments"] for s in tracked.definition_dict["Steps"]}
    run = lambda step: json.loads(json.dumps(RUN_NAME).replace("{step}", step))  # noqa: E731
    # the built-in algorithm: SageMaker logs the training job's metrics (CreateTrainingJob's MlflowConfig)
    assert steps["Train"]["MlflowConfig"] == {"MlflowResourceArn": MLFLOW_SERVER, "MlflowExperimentName": "q4",
                                              "MlflowRunName": run("Train")}
    # Evaluate logs itself, to the run its environment names (processing jobs have no MlflowConfig)
    assert {k: v for k, v in steps["Evaluate"]["Environment"].items() if k != "PYTHONUNBUFFERED"} == {
        "MLFLOW_TRACKING_URI": MLFLOW_SERVER, "MLFLOW_EXPERIMENT_NAME": "q4", "MLFLOW_RUN_NAME": run("Evaluate"),
        "PIPELINE_EXECUTION_ID": {"Get": "Execution.PipelineExecutionId"},
        # the stock XGBoost image has neither mlflow nor the plugin: the job installs the image's pinned pair
        "MLFLOW_PIP_INSTALL": "mlflow-skinny==3.17.2 sagemaker-mlflow==0.5.0"}
    # our image logs each round itself: its job gets the environment, not the job-level MlflowConfig
    custom = build(full_config(mlflow_resource_arn=MLFLOW_SERVER, training_mode="custom",
                               training_image="123456789012.dkr.ecr.us-east-1.amazonaws.com/leads:1"))
    train = next(s["Arguments"] for s in custom.definition_dict["Steps"] if s["Name"] == "Train")
    assert "MlflowConfig" not in train and train["Environment"]["MLFLOW_RUN_NAME"] == run("Train")
    assert "MLFLOW_PIP_INSTALL" not in train["Environment"]  # our image has them built in
    assert train["Environment"]["MLFLOW_EXPERIMENT_NAME"] == "LeadScoringPipeline"
    from pipelines.validation import SecurityRules, validate

    assert validate(tracked.definition_dict, SecurityRules.for_config(full_config(mlflow_resource_arn=MLFLOW_SERVER))) == []


@pytest.mark.parametrize("values, message", [
    ({"mlflow_resource_arn": "arn:aws:sagemaker:us-east-1:123456789012:model/x"}, "is not the ARN of a SageMaker MLflow"),
    ({"mlflow_resource_arn": MLFLOW_SERVER, "mlflow_experiment_name": "x" * 257}, "must be 1 to 256 characters"),
])
def test_mlflow_settings_are_checked(values, message):
    with pytest.raises(ConfigError, match=message):
        full_config(**values)


def test_a_local_run_says_it_does_not_track_to_the_managed_server():
    from pipelines.local.unenforced import pipeline_settings

    definition = build(full_config(mlflow_resource_arn=MLFLOW_SERVER)).definition_dict
    assert [line for line in pipeline_settings(definition) if line.startswith("MlflowConfig")] == [
        f"MlflowConfig = {MLFLOW_SERVER} (experiment LeadScoringPipeline): SageMaker managed MLflow tracking of the "
        "executions"]
