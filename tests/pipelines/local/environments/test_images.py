"""An image's environment: built once with uv from the image's pins and the rest of its Python world (nearest
installable version where a version has no wheel for this Python; a world library that cannot be installed here
left out, with why), reused by every later job, and what the report says of it."""

from __future__ import annotations

import functools
import json
import platform
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from packaging.utils import canonicalize_name

from pipelines.errors import EnvironmentBuildError
from pipelines.local.environments import Environments, images
from pipelines.local.environments.interpreters import minor_of
from pipelines.local.image_libraries import IMAGES, ImageLibraries, Library, framework_images, named
from tests.pipelines.local.executors.test_job_contracts import wheel
from tests.pipelines.local.helpers import definition, engine, script_step

SKLEARN_1_2 = IMAGES[("sagemaker-scikit-learn", "1.2-1")]


def versions(environment_root: Path, *modules: str) -> dict[str, str]:
    """The versions a job's interpreter imports (or the error it gets), asked of that interpreter."""
    code = ("import importlib, json, sys\nout = {}\nfor name in sys.argv[1:]:\n"
            "    try:\n        out[name] = importlib.import_module(name).__version__\n"
            "    except ImportError as exc:\n        out[name] = 'ImportError'\nprint(json.dumps(out))\n")
    done = subprocess.run([str(environment_root / "bin" / "python"), "-c", code, *modules], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def test_the_environment_has_the_images_pins_or_the_nearest_version_that_installs(tmp_path):
    environment = Environments().prepare(SKLEARN_1_2, lambda line: None)
    installed = environment.manifest["installed"]
    assert installed["scikit-learn"] == "1.2.1" and installed["numpy"] == "1.24.1" and installed["boto3"] == "1.28.57"
    assert installed["pandas"].startswith("1.5.")  # 1.1.3 has no wheel for this Python: the nearest above it
    pandas = next(d for d in environment.manifest["differences"] if d[0] == "pandas")
    assert pandas[:3] == ["pandas", "1.1.3", installed["pandas"]] and pandas[3].startswith("no wheel of pandas 1.1.3")
    # the job imports the image's libraries, and nothing of the engine's (xgboost is not in this image)
    assert versions(environment.root, "sklearn", "pandas", "numpy", "xgboost") == {
        "sklearn": "1.2.1", "pandas": installed["pandas"], "numpy": "1.24.1", "xgboost": "ImportError"}


def test_a_built_environment_is_reused_without_building(tmp_path):
    first = Environments().prepare(SKLEARN_1_2, lambda line: None)
    said: list[str] = []
    again = Environments().prepare(SKLEARN_1_2, said.append)
    assert again.root == first.root and not any("building" in line or line.startswith("uv:") for line in said)


def test_a_library_that_cannot_be_installed_is_named_and_nothing_half_built_is_left(tmp_path):
    image = ImageLibraries("sagemaker-scikit-learn", "0.0-1", "3.11", (("no-such-distribution-for-tests", "1.0"),),
                           "tests")
    with pytest.raises(EnvironmentBuildError) as raised:
        Environments(tmp_path / "cache").prepare(image, lambda line: None)
    assert str(raised.value).startswith("sagemaker-scikit-learn:0.0-1: uv could not install the image's libraries")
    assert "no-such-distribution-for-tests" in str(raised.value)
    assert not images.folder(tmp_path / "cache", image).exists()


def test_offline_without_the_environment_names_the_command_that_builds_it(tmp_path, monkeypatch):
    monkeypatch.setenv("UV_DEFAULT_INDEX", "http://127.0.0.1:9/simple")  # nothing listens there: the index is gone
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    image = IMAGES[("sagemaker-scikit-learn", "1.4-2")]
    with pytest.raises(EnvironmentBuildError) as raised:
        Environments(tmp_path / "cache").prepare(image, lambda line: None)
    message = str(raised.value)
    assert message.startswith("sagemaker-scikit-learn:1.4-2: its environment is not cached and the package index "
                              "cannot be reached")
    assert "`python -m pipelines.run images prepare sagemaker-scikit-learn:1.4-2`" in message
    assert "--image-libraries engine" in message
    assert not images.folder(tmp_path / "cache", image).exists()


SPLIT_IDIOM = """
import numpy as np, pandas as pd
df = pd.DataFrame({"label": [0, 1] * 50, "x": range(100)})
train, validation, test = np.split(df.sample(frac=1, random_state=1), [int(0.7 * len(df)), int(0.85 * len(df))])
train.to_csv("/opt/ml/processing/out/train.csv", header=False, index=False)
print("pandas", pd.__version__, "numpy", np.__version__, "rows", len(train), len(validation), len(test))
"""


def _sklearn_0_23_step() -> dict:
    step = script_step("Split", SPLIT_IDIOM, retry=False)
    step["Arguments"]["AppSpecification"]["ImageUri"] = (
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:0.23-1-cpu-py3")
    return step


def test_a_script_of_the_sklearn_0_23_era_runs_on_its_images_libraries(tmp_path):
    run, lines = engine(tmp_path / "store")
    record = run.run(definition(_sklearn_0_23_step()), "p", {})
    assert record.status == "Succeeded", record.step("Split").failure_reason
    assert any(line.startswith("Split: pandas 1.5.") and "rows 70 15 15" in line for line in lines)
    [said] = [line for line in record.step("Split").unenforced if line.startswith("AppSpecification.ImageUri = ")]
    assert ": the job runs on the sagemaker-scikit-learn:0.23-1 image's libraries (boto3 1.28.0, " in said
    # the image's boto3 predates AWS_ENDPOINT_URL, through which a job finds the store's S3 endpoint
    assert "; boto3 1.24.17 -> 1.28.0 (the store's S3 endpoint reaches jobs as AWS_ENDPOINT_URL" in said
    assert "not as in the image: Python 3.7.10 (here 3." in said and "; pandas 1.1.3 -> 1.5." in said


def test_with_this_interpreters_libraries_the_same_script_fails_and_the_report_says_why(tmp_path):
    run, _ = engine(tmp_path / "store", environments=Environments(image_libraries="engine"))
    record = run.run(definition(_sklearn_0_23_step()), "p", {})
    assert record.status == "Failed"
    assert "AttributeError: 'numpy.ndarray' object has no attribute 'to_csv'" in record.step("Split").failure_reason
    [said] = [line for line in record.step("Split").unenforced if line.startswith("AppSpecification.ImageUri = ")]
    assert "image's libraries (aws/sagemaker-scikit-learn-container@0.23-1: " in said and "pandas 1.1.3 (here " in said


def serve_index(root: Path, monkeypatch) -> Iterator[str]:
    """``root`` served on loopback as the only package index uv reads: a folder listing is a simple-repository
    page, one link per file."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    monkeypatch.setenv("UV_DEFAULT_INDEX", url)
    yield url
    server.shutdown()
    server.server_close()


def stand_in(root: Path, name: str, version: str) -> None:
    """A wheel named and versioned as PyPI's ``name`` (importable as ``name`` with dashes as underscores)."""
    module = canonicalize_name(name).replace("-", "_")
    (root / canonicalize_name(name)).mkdir(parents=True, exist_ok=True)
    (root / canonicalize_name(name) / f"{module}-{version}-py3-none-any.whl").write_bytes(
        wheel(module, version, f"__version__ = {version!r}\n"))


def _lowest(library: Library) -> str:
    """The version uv's ``lowest-direct`` resolution takes for a library of the world."""
    return images.requirement(library.name, library.version).split(",")[0].split(">=", 1)[1]


@pytest.fixture
def framework_index(tmp_path, monkeypatch) -> Iterator[str]:
    """A package index on loopback holding stand-ins named and versioned as PyPI's torch and tensorflow (whose
    wheels are GBs), and as the rest of the framework images' worlds at the versions they resolve to."""
    root = tmp_path / "index"
    for name, version in (("torch", "2.0.0"), ("torch", "2.1.0"), ("torch", "2.2.0"), ("tensorflow", "2.13.0")):
        stand_in(root, name, version)
    for library in {library for image in framework_images().values() for library in image.world}:
        if not library.unavailable:
            stand_in(root, library.name, _lowest(library))
    yield from serve_index(root, monkeypatch)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


def test_a_framework_image_gets_its_framework_at_the_images_version_or_the_nearest_above(tmp_path, framework_index):
    cache = Environments(tmp_path / "cache")
    torch_2_1 = cache.prepare(named("pytorch-training:2.1.0-py310"), lambda line: None)
    assert torch_2_1.manifest["installed"] == {"torch": "2.1.0"}
    # its world is installed too, the toolkits PyPI publishes as source only among it
    assert torch_2_1.manifest["world"]["torchvision"] == "0.16.0"
    assert "not installed" not in (torch_2_1.manifest["world"]["sagemaker-training"],
                                   torch_2_1.manifest["world"]["sagemaker-pytorch-training"])
    assert torch_2_1.manifest["differences"] == []
    assert versions(torch_2_1.root, "torch", "torchvision", "tensorflow", "xgboost") == {
        "torch": "2.1.0", "torchvision": "0.16.0", "tensorflow": "ImportError", "xgboost": "ImportError"}
    tensorflow = cache.prepare(named("tensorflow-training:2.13.0-py310"), lambda line: None)
    assert versions(tensorflow.root, "tensorflow", "torch") == {"tensorflow": "2.13.0", "torch": "ImportError"}
    # 1.13.1 has no wheel in this index: the nearest version above it, and the report says why
    torch_1_13 = cache.prepare(named("pytorch-training:1.13.1-py39"), lambda line: None)
    assert torch_1_13.manifest["differences"][0] == [
        "torch", "1.13.1", "2.0.0",
        f"no wheel of torch 1.13.1 installs on Python {minor_of(torch_1_13.manifest['python'])} ({platform.machine()})"]


def test_a_job_on_a_framework_image_imports_its_images_framework(tmp_path, framework_index):
    step = script_step("Fit", "import torch\nprint('torch', torch.__version__)\n", retry=False)
    step["Arguments"]["AppSpecification"]["ImageUri"] = (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.2.0-cpu-py310-ubuntu20.04-sagemaker")
    run, lines = engine(tmp_path / "store", environments=Environments(tmp_path / "cache"))
    record = run.run(definition(step), "p", {})
    assert record.status == "Succeeded", record.step("Fit").failure_reason
    assert "Fit: torch 2.2.0" in lines
    [said] = [line for line in record.step("Fit").unenforced if line.startswith("AppSpecification.ImageUri = ")]
    assert ": the job runs on the pytorch-training:2.2.0-py310 image's libraries (torch 2.2.0); not as in the image: " \
           "Python 3.10 (here 3." in said


# --- the image's Python world

def test_the_environment_is_the_images_python_world(tmp_path):
    environment = Environments().prepare(SKLEARN_1_2, lambda line: None)
    root, manifest = environment.root, environment.manifest
    imported = versions(root, "requests", "pyarrow", "flask", "urllib3")
    assert imported["pyarrow"] == "14.0.1" and imported["urllib3"] == "1.26.17" and imported["flask"] == "1.1.1"
    assert imported["requests"] == manifest["world"]["requests"] != "not installed"
    pip = subprocess.run([str(root / "bin" / "python"), "-m", "pip", "--version"], capture_output=True, text=True)
    assert pip.returncode == 0 and pip.stdout.startswith(f"pip {manifest['world']['pip']} from {root}")
    aws = subprocess.run([str(root / "bin" / "aws"), "--version"], capture_output=True, text=True)
    assert aws.returncode == 0 and f"aws-cli/{manifest['world']['awscli']} " in aws.stdout + aws.stderr
    assert manifest["packages"]["botocore"].startswith("1.31.") and "s3transfer" in manifest["packages"]
    # the SageMaker toolkits, which PyPI publishes as source only, are built here and import
    toolkits = subprocess.run([str(root / "bin" / "python"), "-c", "import sagemaker_training.environment, "
                               "sagemaker_containers, sagemaker_inference"], capture_output=True, text=True)
    assert toolkits.returncode == 0, toolkits.stderr
    assert manifest["world"]["sagemaker-training"] == "4.8.0"
    # what differs from the image, and why: the aws command, ml-io (not on PyPI)
    differences = {d[0]: d[1:] for d in manifest["differences"]}
    assert differences["awscli"][0] == "AWS CLI v2" and "AWS_ENDPOINT_URL" in differences["awscli"][2]
    assert "sagemaker-training" not in differences
    assert differences["mlio-py"][1] == "not installed" and "requests" not in differences


def test_the_aws_command_goes_to_the_endpoint_in_aws_endpoint_url(tmp_path):
    environment = Environments().prepare(SKLEARN_1_2, lambda line: None)
    seen: list[str] = []

    class Recorder(QuietHandler):
        def do_GET(self):  # noqa: N802 (the base class's name)
            seen.append(self.path)
            self.send_error(404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        subprocess.run([str(environment.root / "bin" / "aws"), "s3", "ls", "s3://bkt/some/"], capture_output=True,
                       timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_DEFAULT_REGION": "us-east-1",
                                        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                                        "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1",
                                        # anything but the endpoint goes to a proxy where nothing listens
                                        "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
                                        "NO_PROXY": "127.0.0.1",
                                        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}"})
    finally:
        server.shutdown()
        server.server_close()
    assert any(path.startswith("/bkt?") and "prefix=some%2F" in path for path in seen), seen


def test_a_world_library_that_cannot_be_installed_here_is_left_out_and_the_manifest_says_why(tmp_path, monkeypatch):
    root = tmp_path / "index"
    for name, version in (("tinylib", "1.0"), ("tinyworld", "1.0"), ("ranged", "1.2")):
        stand_in(root, name, version)
    (root / "sourceonly").mkdir()
    (root / "sourceonly" / "sourceonly-1.0.tar.gz").write_bytes(b"not built here")
    image = ImageLibraries("sagemaker-scikit-learn", "0.0-2", "3.11", (("tinylib", "1.0"),), "tests", (
        Library("tinyworld", "1.0", "tests"), Library("ranged", ">=1.0,<1.1", "tests"),
        Library("sourceonly", "1.0", "tests"), Library("elsewhere", "2.0", "tests"),
        Library("mlio-py", "0.9.0", "tests", "built in the image; not published on PyPI")))
    said: list[str] = []
    for _ in serve_index(root, monkeypatch):
        environment = Environments(tmp_path / "cache").prepare(image, said.append)
    manifest = environment.manifest
    assert manifest["installed"] == {"tinylib": "1.0"} and manifest["world"] == {
        "tinyworld": "1.0", "ranged": "1.2", "sourceonly": "not installed", "elsewhere": "not installed",
        "mlio-py": "not installed"}
    assert versions(environment.root, "tinyworld", "ranged") == {"tinyworld": "1.0", "ranged": "1.2"}
    # a range that cannot be installed is taken from its lower bound up; what has no wheel or no release is left out
    ranged = manifest["differences"].pop(0)
    assert ranged == ["ranged", ">=1.0,<1.1", "1.2",
                      "the package index has no ranged >=1.0,<1.1; installed from 1.0 up instead"]
    python = minor_of(manifest["python"])  # the image's 3.11, this machine's
    assert manifest["differences"] == [
        ["sourceonly", "1.0", "not installed", (f"no wheel of sourceonly 1.0 or later for Python {python} "
                                                f"({platform.machine()}), and source distributions are not built here")],
        ["elsewhere", "2.0", "not installed", "elsewhere 2.0 is not on the package index"],
        ["mlio-py", "0.9.0", "not installed", "built in the image; not published on PyPI"]]
    assert "sagemaker-scikit-learn:0.0-2: elsewhere 2.0: elsewhere 2.0 is not on the package index" in said


@pytest.mark.parametrize("image", [*IMAGES.values(), *framework_images().values()], ids=lambda image: image.name)
def test_every_world_library_resolves_from_a_lower_bound(image):
    for library in image.world:
        if not library.unavailable:
            assert images.requirement(library.name, library.version).startswith(f"{library.name}>="), library
        if library.described:
            assert library.name in images.LOCAL_MINIMUMS, library


@pytest.mark.parametrize("name, version, wanted", [
    ("awscli", "AWS CLI v2", "awscli>=1.29.0"),  # the image has v2: v1 from PyPI, from what honours AWS_ENDPOINT_URL
    ("awscli", "<2", "awscli>=1.29.0,<2"),
    ("botocore", "1.27.18", "botocore>=1.31.0"),
    ("requests", "not in the image", "requests>=2.20.0"),
    ("requests", ">=2.20.0,<2.21", "requests>=2.20.0,<2.21"),
    ("psutil", "5.7.2", "psutil>=5.7.2"),
])
def test_a_requirement_starts_from_the_images_version_or_the_local_minimum(name, version, wanted):
    assert images.requirement(name, version) == wanted


def test_a_range_without_a_lower_bound_is_refused():
    with pytest.raises(ValueError, match="'<3.0' has no lower bound"):
        images.requirement("jinja2", "<3.0")
