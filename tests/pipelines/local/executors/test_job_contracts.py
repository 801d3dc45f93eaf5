"""The container contracts of jobs other teams write: ContainerEntrypoint, every resourceconfig key and
platform variable, several instances with sharded inputs, script mode, and S3 reached from the program."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import uuid
import zipfile
from pathlib import Path

import pytest

from pipelines.local.engine import LocalEngine, RunOptions
from pipelines.local.environments import Environments
from pipelines.local.image_libraries import libraries_of
from pipelines.local.registry import Registry
from pipelines.local.store import Store
from tests.sandboxing import needs_container_paths

pytestmark = needs_container_paths

CUSTOM_IMAGE = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/their-trainer:7"
SKLEARN_IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
# the XGBoost framework estimator uses the built-in algorithm's image; sagemaker_program makes it script mode
XGBOOST_FRAMEWORK_IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"

# what their entrypoint checks and records, on every host
ENTRYPOINT_PROGRAM = """
import json, os, pathlib, socket, boto3
config = json.load(open("/opt/ml/input/config/resourceconfig.json"))
for key in ("current_host", "current_instance_type", "current_group_name", "hosts", "instance_groups",
            "network_interface_name"):
    assert key in config, key
assert os.environ["TRAINING_JOB_NAME"] and os.environ["TRAINING_JOB_ARN"].endswith(os.environ["TRAINING_JOB_NAME"].lower())
assert socket.gethostname() == config["current_host"], socket.gethostname()
peers = {host: socket.gethostbyname(host) for host in config["hosts"]}
files = sorted(p.name for p in pathlib.Path("/opt/ml/input/data/train").iterdir())
report = {"host": config["current_host"], "files": files, "peers": peers, "argv": __import__("sys").argv[1:]}
boto3.client("s3").put_object(Bucket="their-bucket", Key="reports/" + config["current_host"] + ".json",
                              Body=json.dumps(report).encode())
pathlib.Path("/opt/ml/model/report.json").write_text(json.dumps(report))
"""


def engine(store: Store, lines: list[str] | None = None) -> LocalEngine:
    sink = lines if lines is not None else []
    return LocalEngine(store, Registry(store.root / "registry.sqlite"), lambda step, line: sink.append(line),
                       lambda record: None, RunOptions(region="eu-west-1"))


def training_step(spec: dict, hyperparameters: dict, instances: int = 1, channels: dict | None = None) -> dict:
    channels = channels or {"train": ("s3://their-bucket/train", "ShardedByS3Key")}
    return {"Name": "Fit", "Type": "Training", "Arguments": {
        "AlgorithmSpecification": {"TrainingInputMode": "File", **spec},
        "HyperParameters": hyperparameters,
        "InputDataConfig": [{"ChannelName": name, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": distribution}}}
            for name, (uri, distribution) in channels.items()],
        "OutputDataConfig": {"S3OutputPath": "s3://their-bucket/models"},
        "ResourceConfig": {"InstanceType": "ml.c5.xlarge", "InstanceCount": instances, "VolumeSizeInGB": 10},
        "RoleArn": "arn:aws:iam::111122223333:role/Theirs", "StoppingCondition": {"MaxRuntimeInSeconds": 300}}}


def run(store: Store, *steps: dict, lines: list[str] | None = None):
    return engine(store, lines).run({"Version": "2020-12-01", "Parameters": [], "Steps": list(steps)}, "theirs", {})


def model_files(store: Store, record) -> dict[str, bytes]:
    artifact = store.path(record.step("Fit").properties["ModelArtifacts"]["S3ModelArtifacts"])
    with tarfile.open(artifact) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


@pytest.fixture
def store(tmp_path) -> Store:
    store = Store(tmp_path / "store")
    for index in range(4):
        store.put_bytes(f"{index},1,2\n".encode(), f"s3://their-bucket/train/part-{index}.csv")
    return store


def test_a_container_entrypoint_runs_on_every_host_with_its_shard_and_the_full_contract(store) -> None:
    step = training_step({"TrainingImage": CUSTOM_IMAGE, "ContainerEntrypoint": ["python3", "-c", ENTRYPOINT_PROGRAM],
                          "ContainerArguments": ["--epochs", "2"]}, {}, instances=2)
    record = run(store, step)
    assert record.status == "Succeeded", record.failure_reason
    reports = {host: json.loads(store.path(f"s3://their-bucket/reports/{host}.json").read_text())
               for host in ("algo-1", "algo-2")}
    assert reports["algo-1"]["files"] == ["part-0.csv", "part-2.csv"]
    assert reports["algo-2"]["files"] == ["part-1.csv", "part-3.csv"]
    assert reports["algo-2"]["peers"] == {"algo-1": "127.0.0.1", "algo-2": "127.0.0.1"}
    assert reports["algo-1"]["argv"] == ["--epochs", "2"]
    assert json.loads(model_files(store, record)["report.json"])["host"] == "algo-1"
    unenforced = record.step("Fit").unenforced
    assert any(line.startswith(f"AlgorithmSpecification.TrainingImage = {CUSTOM_IMAGE}") for line in unenforced)
    assert any(line.startswith("S3 permissions") for line in unenforced)


def test_one_failing_host_stops_the_others_and_names_itself(store) -> None:
    program = ("import json, pathlib, sys, time\n"
               "host = json.load(open('/opt/ml/input/config/resourceconfig.json'))['current_host']\n"
               "if host == 'algo-2':\n"
               "    pathlib.Path('/opt/ml/output/failure').write_text('out of memory on the big shard')\n"
               "    sys.exit(3)\n"
               "time.sleep(60)\n")
    step = training_step({"TrainingImage": CUSTOM_IMAGE, "ContainerEntrypoint": ["python3", "-c", program]}, {},
                         instances=2)
    record = run(store, step)
    assert record.step("Fit").failure_reason == "AlgorithmError on algo-2: out of memory on the big shard"
    assert record.end_time is not None


def wheel(name: str, version: str, code: str) -> bytes:
    """A pure-Python wheel of one module, made here: a requirement that installs without any index."""
    files = {f"{name}/__init__.py": code.encode(),
             f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
                     f"{len(data)}\n" for path, data in files.items()) + f"{name}-{version}.dist-info/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in {**files, f"{name}-{version}.dist-info/RECORD": record.encode()}.items():
            archive.writestr(path, data)
    return buffer.getvalue()


TINYLIB = "tinylib-1.0-py3-none-any.whl"


def source_archive(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode() if isinstance(text, str) else text
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


SCRIPT = """
import argparse, json, os, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--max-depth", type=int)
parser.add_argument("--objective")
parser.add_argument("--model-dir", default=os.environ["SM_MODEL_DIR"])
args = parser.parse_args()
rows = sum(len(p.read_text().splitlines()) for p in pathlib.Path(os.environ["SM_CHANNEL_TRAIN"]).glob("*.csv"))
env = {k: os.environ[k] for k in ("SM_CURRENT_HOST", "SM_HOSTS", "SM_CHANNELS", "SM_HP_OBJECTIVE")}
import sklearn, tinylib  # tinylib installed from requirements.txt, as the toolkit installs it
pathlib.Path(args.model_dir, "model.json").write_text(json.dumps(
    {"rows": rows, "depth": args.max_depth, "objective": args.objective, "cwd": os.getcwd(), "env": env,
     "tinylib": tinylib.VALUE, "sklearn": sklearn.__version__}))
print("train-rmse=0.25")
"""


@pytest.mark.parametrize("image", [SKLEARN_IMAGE, XGBOOST_FRAMEWORK_IMAGE])
def test_sdk_v2_script_mode_runs_the_entry_point_as_the_training_toolkit_does(store, image) -> None:
    store.put_bytes(source_archive({"train.py": SCRIPT, "requirements.txt": f"# for {image}, {uuid.uuid4()}\nscikit-learn>=1.0\n./wheels/{TINYLIB}\n",
                                    f"wheels/{TINYLIB}": wheel("tinylib", "1.0", "VALUE = 'from its wheel'\n")}),
                    "s3://their-bucket/code/sourcedir.tar.gz")
    hyperparameters = {"max-depth": "5", "objective": '"reg:squarederror"',
                       "sagemaker_program": '"train.py"', "sagemaker_submit_directory": '"s3://their-bucket/code/sourcedir.tar.gz"',
                       "sagemaker_container_log_level": "20", "sagemaker_region": '"eu-west-1"'}
    lines: list[str] = []
    step = training_step({"TrainingImage": image, "MetricDefinitions": [
        {"Name": "train:rmse", "Regex": "train-rmse=([0-9.]+)"}]}, hyperparameters,
        channels={"train": ("s3://their-bucket/train", "FullyReplicated")})
    record = run(store, step, lines=lines)
    assert record.status == "Succeeded", record.failure_reason
    model = json.loads(model_files(store, record)["model.json"])
    # the requirements are installed on top of the image's environment: the script sees the image's scikit-learn
    image_environment = Environments().cached_image(libraries_of(image))
    assert model == {"rows": 4, "depth": 5, "objective": "reg:squarederror", "cwd": "/opt/ml/code",
                     "env": {"SM_CURRENT_HOST": "algo-1", "SM_HOSTS": '["algo-1"]', "SM_CHANNELS": '["train"]',
                             "SM_HP_OBJECTIVE": "reg:squarederror"}, "tinylib": "from its wheel",
                     "sklearn": image_environment.manifest["installed"]["scikit-learn"]}
    assert record.step("Fit").properties["FinalMetricDataList"] == [{"MetricName": "train:rmse", "Value": 0.25}]
    assert any(line.startswith("requirements.txt: installing into a new environment") for line in lines)
    assert any("Successfully installed tinylib-1.0" in line for line in lines)  # scikit-learn was there already
    again: list[str] = []
    assert run(store, step, lines=again).status == "Succeeded"
    assert any(line.startswith("requirements.txt: installed in the cached environment") for line in again)
    assert not any(line.startswith("pip: ") for line in again)
    assert any(line.startswith(f"AlgorithmSpecification.TrainingImage = {image}: the job runs on the ")
               for line in record.step("Fit").unenforced)


def test_script_mode_requirements_that_cannot_be_installed_fail_the_step_and_leave_no_environment(store) -> None:
    store.put_bytes(source_archive({"train.py": "print(1)",
                                    "requirements.txt": f"# {uuid.uuid4()}\n./wheels/missing-1.0-py3-none-any.whl\n"}),
                    "s3://their-bucket/code/sourcedir.tar.gz")
    step = training_step({"TrainingImage": SKLEARN_IMAGE}, {
        "sagemaker_program": '"train.py"', "sagemaker_submit_directory": '"s3://their-bucket/code/sourcedir.tar.gz"'})
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "sagemaker-pipelines-local" / "environments"
    before = set(cache.glob("requirements-*"))
    record = run(store, step)
    reason = record.step("Fit").failure_reason
    assert reason.startswith("ClientError: requirements.txt: pip could not install it (") and "missing" in reason
    assert record.step("Fit").attempts == 1  # a client error: never retried
    left = [p for p in set(cache.glob("requirements-*")) - before if p.is_dir()]
    assert all((p / ".complete").is_file() for p in left)  # only finished ones (another test's, at most)


def test_script_mode_code_that_escapes_its_folder_is_refused(store) -> None:
    store.put_bytes(source_archive({"train.py": "print(1)"}), "s3://their-bucket/code/sourcedir.tar.gz")
    step = training_step({"TrainingImage": SKLEARN_IMAGE}, {
        "sagemaker_program": '"../../../../etc/passwd"',
        "sagemaker_submit_directory": '"s3://their-bucket/code/sourcedir.tar.gz"'})
    record = run(store, step)
    assert record.status == "Failed"
    assert "HyperParameters.sagemaker_program" in record.step("Fit").failure_reason


def test_a_source_archive_with_a_member_outside_its_folder_is_a_client_error(store) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../../escaped.py")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    store.put_bytes(buffer.getvalue(), "s3://their-bucket/code/sourcedir.tar.gz")
    step = training_step({"TrainingImage": SKLEARN_IMAGE}, {
        "sagemaker_program": '"train.py"', "sagemaker_submit_directory": '"s3://their-bucket/code/sourcedir.tar.gz"'})
    record = run(store, step)
    assert record.status == "Failed" and record.step("Fit").attempts == 1
    reason = record.step("Fit").failure_reason
    assert reason.startswith("ClientError: HyperParameters.sagemaker_submit_directory") and \
        "sourcedir.tar.gz: member '../../escaped.py' has a '..' segment" in reason
    assert not list(store.root.parent.rglob("escaped.py"))


PROCESSING = """
import json, pathlib
config = json.load(open("/opt/ml/config/resourceconfig.json"))
job = json.load(open("/opt/ml/config/processingjobconfig.json"))
names = sorted(p.name for p in pathlib.Path("/opt/ml/processing/input").iterdir())
lookup = sorted(p.name for p in pathlib.Path("/opt/ml/processing/lookup").iterdir())
out = pathlib.Path("/opt/ml/processing/output") / (config["current_host"] + ".json")
out.write_text(json.dumps({"hosts": config["hosts"], "shard": names, "lookup": lookup, "job": job["ProcessingJobName"]}))
"""


def test_multi_instance_processing_runs_one_program_per_instance_with_its_shard(store) -> None:
    store.put_bytes(PROCESSING.encode(), "s3://their-bucket/code/process.py")
    store.put_bytes(b"k,v\n", "s3://their-bucket/lookup/table.csv")
    step = {"Name": "Shard", "Type": "Processing", "Arguments": {
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 3, "VolumeSizeInGB": 5}},
        "AppSpecification": {"ImageUri": SKLEARN_IMAGE,
                             "ContainerEntrypoint": ["python3", "/opt/ml/processing/code/process.py"]},
        "RoleArn": "arn:aws:iam::111122223333:role/Theirs",
        "ProcessingInputs": [
            {"InputName": "code", "S3Input": {"S3Uri": "s3://their-bucket/code", "LocalPath": "/opt/ml/processing/code",
                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}},
            {"InputName": "input", "S3Input": {"S3Uri": "s3://their-bucket/train", "LocalPath": "/opt/ml/processing/input",
                                               "S3DataType": "S3Prefix", "S3InputMode": "File",
                                               "S3DataDistributionType": "ShardedByS3Key"}},
            {"InputName": "lookup", "S3Input": {"S3Uri": "s3://their-bucket/lookup", "LocalPath": "/opt/ml/processing/lookup",
                                                "S3DataType": "S3Prefix", "S3InputMode": "File",
                                                "S3DataDistributionType": "FullyReplicated"}}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": "s3://their-bucket/processed", "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]}}}
    record = run(store, step)
    assert record.status == "Succeeded", record.failure_reason
    written = {host: json.loads(store.path(f"s3://their-bucket/processed/{host}.json").read_text())
               for host in ("algo-1", "algo-2", "algo-3")}
    assert [w["shard"] for w in written.values()] == [["part-0.csv", "part-3.csv"], ["part-1.csv"], ["part-2.csv"]]
    assert all(w["lookup"] == ["table.csv"] and w["hosts"] == ["algo-1", "algo-2", "algo-3"] for w in written.values())
    assert written["algo-1"]["job"] == record.step("Shard").properties["ProcessingJobName"]


@pytest.mark.parametrize("image_libraries, first_built", [
    ("image", "AlgorithmSpecification.TrainingImage: sagemaker-scikit-learn:1.2-1"),  # the image's environment
    ("engine", "requirements.txt"),  # no image environment: the requirements' is the first to build
])
def test_an_environments_cache_that_cannot_be_written_is_one_clear_client_error(store, tmp_path, image_libraries,
                                                                                 first_built) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache should be")
    store.put_bytes(source_archive({"train.py": "print(1)", "requirements.txt": "scikit-learn>=1.0\n"}),
                    "s3://their-bucket/code/sourcedir.tar.gz")
    step = training_step({"TrainingImage": SKLEARN_IMAGE}, {
        "sagemaker_program": '"train.py"', "sagemaker_submit_directory": '"s3://their-bucket/code/sourcedir.tar.gz"'})
    engine = LocalEngine(store, Registry(store.root / "registry.sqlite"), lambda step, line: None, lambda record: None,
                         RunOptions(environments=Environments(blocked / "cache", image_libraries)))
    record = engine.run({"Version": "2020-12-01", "Parameters": [], "Steps": [step]}, "theirs", {})
    reason = record.step("Fit").failure_reason
    assert reason.startswith(f"ClientError: {first_built}: the environments cache {blocked / 'cache'} cannot be "
                             "written") and "--environments-cache DIR" in reason
    assert record.step("Fit").attempts == 1
