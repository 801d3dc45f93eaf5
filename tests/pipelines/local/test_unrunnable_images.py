"""What the local engine cannot run because of a step's image is refused before anything runs, by ``validate`` and
by ``run`` as a user runs them: every built-in algorithm but XGBoost, a Spark processing image, an image nothing
local stands in for (training, processing, tuning, and the model a transform serves), one line per step naming the
step, the image and the way forward, and nothing written to the store. Definitions built with the real SDK v3."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipelines.cli.main import main
from pipelines.errors import NotRunnableLocallyError, UnsupportedStepTypeError
from tests.pipelines.local.helpers import definition, engine, script_step

REGION = "us-east-1"
BUCKET = "sagemaker-us-east-1-111122223333"
ROLE = "arn:aws:iam::111122223333:role/service-role/AmazonSageMaker-ExecutionRole"
CUSTOM = "111122223333.dkr.ecr.us-east-1.amazonaws.com/team-trainer:3"
# the SDK's built-in algorithms (sagemaker-core's image_uri_config: each a config of its own, "scope" and
# "versions", and XGBoost's legacy version 1), as image_uris.retrieve names them
ALGORITHMS = ["blazingtext", "factorization-machines", "forecasting-deepar", "image-classification", "ipinsights",
              "kmeans", "knn", "lda", "linear-learner", "ntm", "object-detection", "object2vec", "pca",
              "randomcutforest", "semantic-segmentation", "seq2seq"]
LEGACY_XGBOOST = ("xgboost", "1")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """Definition files built by the SDK, as a team builds them: one Training step per built-in algorithm, one with
    a custom image, a Spark processing step after a script step, and a pipeline with a Tuning step, a branch and a
    Transform of a built-in algorithm's model."""
    from moto import mock_aws

    folder = tmp_path_factory.mktemp("definitions")
    with pytest.MonkeyPatch.context() as env, mock_aws():
        for name, value in {"SAGEMAKER_VALIDATE_ROLE": "false", "AWS_DEFAULT_REGION": REGION,
                            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            env.setenv(name, value)
        import boto3
        from sagemaker.core import image_uris

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        files = {algorithm: _write(folder, algorithm, [_training("Train", image_uris.retrieve(algorithm, REGION))])
                 for algorithm in ALGORITHMS}
        legacy = image_uris.retrieve(LEGACY_XGBOOST[0], REGION, version=LEGACY_XGBOOST[1])
        files["xgboost:1"] = _write(folder, "xgboost-1", [_training("Train", legacy)])
        files["custom"] = _write(folder, "custom", [_training("Train", CUSTOM)])
        files["spark"] = _write(folder, "spark", _spark_after_a_script(folder))
        from sagemaker.core.workflow.parameters import ParameterInteger

        width = ParameterInteger("Width", 3)
        files["mixed"] = _write(folder, "mixed", _mixed(image_uris.retrieve("kmeans", REGION),
                                                         image_uris.retrieve("factorization-machines", REGION), width),
                                [width])
    return files


def _session():
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    return PipelineSession(default_bucket=BUCKET)


def _trainer(image: str, session=None):
    from sagemaker.core.training.configs import Compute, OutputDataConfig
    from sagemaker.train import ModelTrainer

    return ModelTrainer(training_image=image, role=ROLE, sagemaker_session=session or _session(),
                        compute=Compute(instance_type="ml.m5.large", instance_count=1),
                        hyperparameters={"feature_dim": "4"},
                        output_data_config=OutputDataConfig(s3_output_path=f"s3://{BUCKET}/models"))


def _training(name: str, image: str):
    from sagemaker.core.training.configs import InputData, S3DataSource
    from sagemaker.mlops.workflow import TrainingStep

    data = InputData(channel_name="train", data_source=S3DataSource(
        s3_data_type="S3Prefix", s3_uri=f"s3://{BUCKET}/train", s3_data_distribution_type="FullyReplicated"))
    return TrainingStep(name=name, step_args=_trainer(image).train(input_data_config=[data]))


def _spark_after_a_script(folder: Path) -> list:
    from sagemaker.core import image_uris
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.spark.processing import PySparkProcessor
    from sagemaker.mlops.workflow import ProcessingStep

    session = _session()
    (folder / "prepare.py").write_text("print('prepared')\n")
    (folder / "job.py").write_text("print('spark')\n")
    sklearn = image_uris.retrieve("sklearn", REGION, version="1.2-1")
    prepare = ScriptProcessor(image_uri=sklearn, command=["python3"], role=ROLE, instance_type="ml.m5.large",
                              instance_count=1, sagemaker_session=session)
    spark = PySparkProcessor(role=ROLE, instance_type="ml.m5.xlarge", instance_count=1, framework_version="3.3",
                             sagemaker_session=session)
    first = ProcessingStep(name="Prepare", step_args=prepare.run(code=str(folder / "prepare.py")))
    return [first, ProcessingStep(name="SparkJob", step_args=spark.run(submit_app=str(folder / "job.py")),
                                  depends_on=[first])]


def _mixed(kmeans: str, factorization_machines: str, width) -> list:
    """A Tuning step of K-Means, a Condition whose branch trains Factorization Machines, a K-Means model and a
    Transform that serves it."""
    from sagemaker.core.parameter import ContinuousParameter
    from sagemaker.core.training.configs import InputData
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.conditions import ConditionGreaterThan
    from sagemaker.mlops.workflow import ModelStep, TransformStep
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.steps import TuningStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.tuner import HyperparameterTuner

    session = _session()
    tuner = HyperparameterTuner(model_trainer=_trainer(kmeans, session), objective_metric_name="test:msd",
                                objective_type="Minimize", max_jobs=2, max_parallel_jobs=1,
                                hyperparameter_ranges={"extra_center_factor": ContinuousParameter(1, 10)})
    tune = TuningStep(name="TuneKMeans", step_args=tuner.tune(inputs=[
        InputData(channel_name="train", data_source=f"s3://{BUCKET}/train")]))
    branch = ConditionStep(name="Wide", conditions=[ConditionGreaterThan(left=width, right=2)],
                           if_steps=[_training("TrainFM", factorization_machines)], else_steps=[])
    model = ModelStep(name="KMeansModel", step_args=ModelBuilder(
        image_uri=kmeans, s3_model_data_url=f"s3://{BUCKET}/model.tar.gz", role_arn=ROLE,
        sagemaker_session=session).build())
    transformer = Transformer(model_name=model.properties.ModelName, instance_type="ml.m5.large", instance_count=1,
                              output_path=f"s3://{BUCKET}/scores", sagemaker_session=session)
    score = TransformStep(name="Score", step_args=transformer.transform(data=f"s3://{BUCKET}/new",
                                                                        content_type="text/csv"))
    return [tune, branch, model, score]


def _write(folder: Path, name: str, steps: list, parameters: list | None = None) -> Path:
    from sagemaker.mlops.workflow import Pipeline

    pipeline = Pipeline(name=f"Team-{name}", steps=steps, parameters=parameters or [], sagemaker_session=_session())
    path = folder / f"{name}.json"
    path.write_text(pipeline.definition())
    return path


def cli(capsys, *argv: str) -> tuple[int, list[str]]:
    """Exit code and stderr lines of ``python -m pipelines.run ARGV``, run as a user runs it."""
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().err.splitlines()


def refused_lines(lines: list[str], steps: list[str]) -> dict[str, str]:
    """The one line naming each step (and no line naming it twice); no traceback, never an AlgorithmError."""
    assert not any("Traceback" in line or "AlgorithmError" in line for line in lines), lines
    found = {}
    for step in steps:
        naming = [line for line in lines if f"Step '{step}'" in line]
        assert len(naming) == 1, (step, lines)
        found[step] = naming[0]
    return found


def assert_refused(capsys, tmp_path: Path, path: Path, steps: dict[str, str], *flags: str) -> dict[str, str]:
    """``validate`` and ``run`` both exit 2 with one line per step naming it and its image; the store stays empty."""
    code, validated = cli(capsys, "validate", "--definition", str(path), *flags)
    assert code == 2
    lines = refused_lines(validated, list(steps))
    store = tmp_path / "store"
    code, ran = cli(capsys, "--definition", str(path), "--store", str(store), *flags)
    assert code == 2
    run_lines = refused_lines(ran, list(steps))
    for step, image in steps.items():
        assert image in lines[step] and image in run_lines[step], (image, lines[step], run_lines[step])
    assert not store.exists() or not any(store.rglob("*")), sorted(store.rglob("*"))
    assert not any("Step '" in line for line in ran if not any(f"Step '{step}'" in line for step in steps)), ran
    return run_lines


def image_of(path: Path, step: str) -> str:
    document = json.loads(path.read_text())
    found = next(s for s in document["Steps"] if s["Name"] == step)
    return found["Arguments"]["AlgorithmSpecification"]["TrainingImage"]


@pytest.mark.parametrize("algorithm", [*ALGORITHMS, "xgboost:1"])
def test_a_built_in_algorithm_other_than_xgboost_is_refused_before_anything_runs(built, capsys, tmp_path, algorithm):
    image = image_of(built[algorithm], "Train")
    line = assert_refused(capsys, tmp_path, built[algorithm], {"Train": image})["Train"]
    repository = image.split("/", 1)[1].split(":")[0]
    assert f"built-in algorithm {repository}" in line and "run the step on SageMaker" in line
    assert "or locally" in line  # the nearest thing that runs here


@pytest.mark.parametrize("algorithm, nearest", [("kmeans", "sklearn.cluster.KMeans"),
                                                ("pca", "sklearn.decomposition.PCA"),
                                                ("linear-learner", "built-in XGBoost"),
                                                ("randomcutforest", "IsolationForest"), ("xgboost:1", "1.7-1")])
def test_the_way_forward_names_the_nearest_local_thing(built, capsys, tmp_path, algorithm, nearest):
    line = assert_refused(capsys, tmp_path, built[algorithm], {"Train": image_of(built[algorithm], "Train")})["Train"]
    assert nearest in line


def test_the_sdk_built_in_algorithms_are_read_from_its_image_configuration():
    from pipelines.local import runnable_images

    assert sorted(runnable_images.builtin_algorithms()) == sorted([*ALGORITHMS, "xgboost"])
    assert set(runnable_images.ALTERNATIVES) == set(runnable_images.builtin_algorithms())  # each has a way forward


def test_an_image_with_no_local_stand_in_is_refused_and_a_mapped_program_makes_it_runnable(built, capsys, tmp_path):
    line = assert_refused(capsys, tmp_path, built["custom"], {"Train": CUSTOM})["Train"]
    assert f"--local-image-program '{CUSTOM}=COMMAND'" in line and "sagemaker_program" in line
    code, lines = cli(capsys, "validate", "--definition", str(built["custom"]),
                      "--local-image-program", f"{CUSTOM}=python3 train.py")
    assert code == 0, lines


def test_a_spark_processing_image_is_refused_before_the_step_before_it_runs(built, capsys, tmp_path):
    document = json.loads(built["spark"].read_text())
    spark = next(s for s in document["Steps"] if s["Name"] == "SparkJob")["Arguments"]["AppSpecification"]["ImageUri"]
    assert "sagemaker-spark-processing" in spark
    line = assert_refused(capsys, tmp_path, built["spark"], {"SparkJob": spark})["SparkJob"]
    assert "Spark processing image" in line and "Prepare" not in line


def test_tuning_a_branch_and_a_transform_are_each_refused_on_their_line(built, capsys, tmp_path):
    document = json.loads(built["mixed"].read_text())
    kmeans = document["Steps"][0]["Arguments"]["TrainingJobDefinition"]["AlgorithmSpecification"]["TrainingImage"]
    fm = document["Steps"][1]["Arguments"]["IfSteps"][0]["Arguments"]["AlgorithmSpecification"]["TrainingImage"]
    lines = assert_refused(capsys, tmp_path, built["mixed"], {"TuneKMeans": kmeans, "TrainFM": fm, "Score": kmeans})
    assert "TrainingJobDefinition.AlgorithmSpecification.TrainingImage" in lines["TuneKMeans"]
    assert "KMeansModel" in lines["Score"]  # the Model step itself only records the model: not refused


def test_validate_for_sagemaker_leaves_the_local_engines_limits_out(built, capsys):
    for name in ("kmeans", "custom", "spark", "mixed"):
        code, lines = cli(capsys, "validate", "--definition", str(built[name]), "--target", "sagemaker")
        assert code == 0, (name, lines)


def test_the_refusal_is_its_own_error_class_and_step_types_are_one_of_its_kind(tmp_path):
    local, _ = engine(tmp_path / "store")
    fm = "382416733822.dkr.ecr.us-east-1.amazonaws.com/factorization-machines:1"
    step = {"Name": "Fit", "Type": "Training", "Arguments": {"AlgorithmSpecification": {"TrainingImage": fm}}}
    with pytest.raises(NotRunnableLocallyError) as refused:
        local.run(definition(script_step("A", "print(1)"), step), "p", {})
    assert "Step 'Fit'" in str(refused.value) and fm in str(refused.value)
    assert issubclass(UnsupportedStepTypeError, NotRunnableLocallyError) and refused.value.exit_code == 2
    assert not (tmp_path / "store" / "executions").exists()


def test_an_image_known_only_at_run_time_fails_its_step_as_a_limitation_not_an_algorithm_error(tmp_path):
    local, _ = engine(tmp_path / "store")
    spark = "173754725891.dkr.ecr.us-east-1.amazonaws.com/sagemaker-spark-processing:3.3-cpu"
    step = script_step("Spark", "print(1)", retry=False)
    step["Arguments"]["AppSpecification"].update(ImageUri={"Get": "Parameters.Image"},
                                                 ContainerEntrypoint=["smspark-submit", "job.py"])
    document = definition(step)
    document["Parameters"] = [{"Name": "Image", "Type": "String", "DefaultValue": spark}]
    record = local.run(document, "p", {})
    reason = record.step("Spark").failure_reason
    assert reason.startswith(f"{NotRunnableLocallyError.failure_prefix}: AppSpecification.ImageUri: {spark} is a "
                             "Spark processing image"), reason
    assert not (tmp_path / "store" / "executions" / record.execution_id / "Spark" / "root").exists()  # no job started


def test_a_training_image_known_only_at_run_time_fails_with_the_same_way_forward(tmp_path):
    local, _ = engine(tmp_path / "store")
    pca = "382416733822.dkr.ecr.us-east-1.amazonaws.com/pca:1"
    step = {"Name": "Fit", "Type": "Training", "Arguments": {
        "AlgorithmSpecification": {"TrainingImage": {"Get": "Parameters.Image"}, "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bkt/models"}, "RoleArn": ROLE,
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60}}}
    document = definition(step)
    document["Parameters"] = [{"Name": "Image", "Type": "String", "DefaultValue": pca}]
    reason = local.run(document, "p", {}).step("Fit").failure_reason
    assert reason.startswith(f"{NotRunnableLocallyError.failure_prefix}: AlgorithmSpecification.TrainingImage: "
                             f"{pca} is the SageMaker built-in algorithm pca"), reason
    assert "sklearn.decomposition.PCA" in reason


def test_a_processing_job_without_an_entrypoint_is_refused_up_front(capsys, tmp_path):
    step = script_step("Custom", "print(1)")
    step["Arguments"]["AppSpecification"] = {"ImageUri": CUSTOM}
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(definition(script_step("First", "print(1)"), step)))
    line = assert_refused(capsys, tmp_path, path, {"Custom": CUSTOM})["Custom"]
    assert "ContainerEntrypoint" in line


@pytest.fixture(autouse=True)
def _no_pipeline_settings(monkeypatch):
    """The CLI reads PIPELINE_* settings from the environment: none leak in from the machine running the tests."""
    for name in [n for n in os.environ if n.startswith("PIPELINE_")]:
        monkeypatch.delenv(name)


def test_the_studios_start_refuses_before_it_writes_anything(tmp_path):
    from pipelines.config import PipelineConfig, local_config
    from pipelines.local import launcher

    kmeans = "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"
    step = {"Name": "Cluster", "Type": "Training", "Arguments": {"AlgorithmSpecification": {"TrainingImage": kmeans}}}
    store = tmp_path / "store"
    store.mkdir()
    with pytest.raises(NotRunnableLocallyError) as refused:
        launcher.start(store, local_config(PipelineConfig()), definition(script_step("A", "print(1)"), step), "p", {})
    assert str(refused.value).startswith(f"Step 'Cluster': Arguments.AlgorithmSpecification.TrainingImage: {kmeans} ")
    assert list(store.iterdir()) == []  # no execution folder, launch record or engine log
