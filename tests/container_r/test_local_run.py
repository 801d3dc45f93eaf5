"""The R image's URI runs locally with no flag, as our own image's does: its programs stand in for it in the engine's
training jobs (in the job runtime, under the /opt/ml contract) and in custom-image mode; without R, every way in
says in one line what to install, before anything runs, and a step that finds out only at run time fails as a
ClientError, never an AlgorithmError."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from inference.image_programs import OWN_IMAGE_HOME, R_IMAGE_FILES, image_program
from pipelines.cli.commands.container import main as container_main
from pipelines.cli.main import main as pipelines_main
from pipelines.errors import MissingToolError, NotRunnableLocallyError
from pipelines.local import runnable_images
from pipelines.local.engine import LocalEngine, RunOptions
from pipelines.local.registry import Registry
from pipelines.local.store import Store
from tests.container.helpers import leads, ml_dir
from tests.container_r.helpers import CONTAINER_R, R_IMAGE
from tests.sandboxing import needs_bubblewrap, needs_r

INSTALL = "install them with `sudo apt-get install r-base-core r-cran-gbm r-cran-plumber r-cran-jsonlite`"


@pytest.fixture
def without_r(tmp_path, monkeypatch) -> None:
    """A PATH on which there is no Rscript (nor anything else)."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def training_definition(image: object, hyperparameters: dict[str, str]) -> dict:
    """One Training step of ``image`` (a URI, or a parameter's Get) on s3://bkt/{train,validation}, with the
    MetricDefinitions a user gives the image."""
    channels = [{"ChannelName": name, "ContentType": "text/csv", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"s3://bkt/{name}", "S3DataDistributionType": "FullyReplicated"}}}
        for name in ("train", "validation")]
    return {"Version": "2020-12-01", "Parameters": [{"Name": "Image", "Type": "String", "DefaultValue": R_IMAGE}],
            "Steps": [{"Name": "Train", "Type": "Training", "Arguments": {
                "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File", "MetricDefinitions": [
                    {"Name": "validation:auc", "Regex": r"validation:auc=([0-9.]+)"}]},
                "HyperParameters": hyperparameters, "InputDataConfig": channels,
                "OutputDataConfig": {"S3OutputPath": "s3://bkt/models"},
                "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
                "RoleArn": "arn:aws:iam::123456789012:role/R", "StoppingCondition": {"MaxRuntimeInSeconds": 300}}}]}


def run_training(tmp_path: Path, image: object, hyperparameters: dict[str, str]):
    store = Store(tmp_path / "store")
    for name, rows, seed in (("train", 1500, 1), ("validation", 800, 2)):
        data = leads(rows, seed)
        store.put_bytes("".join(f"{int(r[0])}," + ",".join(f"{v:.6f}" for v in r[1:]) + "\n" for r in data).encode(),
                        f"s3://bkt/{name}/{name}.csv")
    engine = LocalEngine(store, Registry(store.root / "registry.sqlite"), lambda step, line: None, lambda r: None,
                         RunOptions())
    return store, engine.run(training_definition(image, hyperparameters), "p", {})


@needs_r
@needs_bubblewrap
def test_the_r_images_uri_stands_in_with_no_flag_in_any_account_and_region() -> None:
    for uri in (R_IMAGE, "210987654321.dkr.ecr.eu-west-1.amazonaws.com/lead-scoring-r",
                "210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn/lead-scoring-r@sha256:" + "a" * 64):
        program = image_program(uri, {})
        assert program is not None and program.command == ("Rscript",) and program.workdir == OWN_IMAGE_HOME
        assert dict((container, host) for host, container in program.files) == {
            f"{OWN_IMAGE_HOME}/{name}": CONTAINER_R / name for name in R_IMAGE_FILES}
        assert runnable_images.training_refusal({"AlgorithmSpecification": {"TrainingImage": uri}}, {}) is None
        assert runnable_images.serving_refusal(uri, {}) is None
    assert image_program("123456789012.dkr.ecr.us-east-1.amazonaws.com/lead-scoring-rx:1", {}) is None


@needs_r
@needs_bubblewrap
def test_a_training_step_of_the_r_image_trains_in_the_job_runtime(tmp_path) -> None:
    store, record = run_training(tmp_path, R_IMAGE, {"num_round": "40", "max_depth": "3", "eta": "0.2",
                                                     "calibration": "platt"})
    step = record.step("Train")
    assert record.status == "Succeeded", step.failure_reason
    [metric] = step.properties["FinalMetricDataList"]
    assert metric["MetricName"] == "validation:auc" and metric["Value"] > 0.75
    with tarfile.open(store.path(step.properties["ModelArtifacts"]["S3ModelArtifacts"])) as tar:
        assert sorted(tar.getnames()) == ["model.json", "model.rds"]
        assert json.load(tar.extractfile("model.json"))["hyperparameters"]["calibration"] == "platt"


@needs_r
@needs_bubblewrap
def test_the_images_failure_file_is_the_steps_failure_reason(tmp_path) -> None:
    _, record = run_training(tmp_path, R_IMAGE, {"num_round": "40", "eta": "2"})
    assert record.step("Train").failure_reason == "AlgorithmError: hyperparameter eta: '2' must be in (0, 1]"


def test_without_r_the_container_command_says_what_to_install_in_one_line(tmp_path, without_r, capsys) -> None:
    ml = ml_dir(tmp_path / "ml", {"num_round": "10"}, train_rows=50, validation_rows=50)
    for program in ("train", "serve"):
        if program == "serve":
            (ml / "model").mkdir()
        assert container_main([program, "--image", "r", "--ml-dir", str(ml)]) == 2
        assert capsys.readouterr().err.splitlines() == [
            "error: the R image (lead-scoring-r) runs its programs with this machine's R, and Rscript is not "
            f"installed: {INSTALL}"]


def test_without_r_a_run_is_refused_before_anything_runs(tmp_path, without_r) -> None:
    refusal = runnable_images.training_refusal({"AlgorithmSpecification": {"TrainingImage": R_IMAGE}}, {})
    assert refusal == ("AlgorithmSpecification.TrainingImage", "the R image (lead-scoring-r) runs its programs with "
                       f"this machine's R, and Rscript is not installed: {INSTALL}")
    assert runnable_images.serving_refusal(R_IMAGE, {}) == refusal[1]
    with pytest.raises(NotRunnableLocallyError) as refused:
        run_training(tmp_path, R_IMAGE, {"num_round": "10"})
    assert str(refused.value) == f"Step 'Train': Arguments.{refusal[0]}: {refusal[1]}; nothing was run"
    assert not (tmp_path / "store" / "executions").exists()


def test_without_r_an_image_known_only_at_run_time_fails_the_step_as_a_client_error(tmp_path, without_r) -> None:
    _, record = run_training(tmp_path, {"Get": "Parameters.Image"}, {"num_round": "10"})
    assert record.status == "Failed"
    assert record.step("Train").failure_reason == (
        f"ClientError: the R image (lead-scoring-r) runs its programs with this machine's R, and Rscript is not "
        f"installed: {INSTALL}")


def test_missing_r_packages_are_named(monkeypatch) -> None:
    import inference.image_programs as programs

    monkeypatch.setattr(programs, "_missing_r_packages", lambda rscript: ("gbm", "plumber"))
    monkeypatch.setattr(programs.shutil, "which", lambda name: "/usr/bin/Rscript")
    with pytest.raises(MissingToolError, match=r"and R's package\(s\) gbm, plumber are not installed: install them"):
        image_program(R_IMAGE, {})


@needs_r
def test_without_the_sandbox_the_r_image_says_what_to_install(monkeypatch) -> None:
    import inference.image_programs as programs
    from pipelines.local.job_runtime import Unsandboxed

    reason = "bubblewrap not found; install it with `sudo apt-get install bubblewrap` (Debian, Ubuntu)"
    monkeypatch.setattr(programs.job_runtime, "automatic", lambda: Unsandboxed(reason))
    with pytest.raises(MissingToolError) as refused:
        image_program(R_IMAGE, {})
    assert str(refused.value) == ("the R image (lead-scoring-r) runs its programs at /opt/program, as in the image, "
                                  f"which only the job sandbox gives, and jobs are not isolated: {reason}")


@needs_r
@needs_bubblewrap
def test_custom_mode_with_the_r_image_validates_for_the_local_engine(capsys, monkeypatch) -> None:
    for name, value in {"SAGEMAKER_VALIDATE_ROLE": "false", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    code = pipelines_main(["validate", "--training-mode", "custom", "--training-image", R_IMAGE])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "the lead-scoring pipeline: valid" in captured.out and "checked for the local engine" in captured.out
