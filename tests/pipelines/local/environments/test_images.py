"""An image's environment: built once with uv from the image's pins (nearest installable version where a pin
has no wheel for this Python), reused by every later job, and what the report says of it."""

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

from pipelines.errors import EnvironmentBuildError
from pipelines.local.environments import Environments, images
from pipelines.local.image_libraries import IMAGES, ImageLibraries, named
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


@pytest.fixture
def framework_index(tmp_path, monkeypatch) -> Iterator[str]:
    """A package index on loopback holding stand-ins named and versioned as PyPI's torch and tensorflow (whose
    wheels are GBs): the only index uv reads."""
    root = tmp_path / "index"
    for name, version in (("torch", "2.0.0"), ("torch", "2.1.0"), ("torch", "2.2.0"), ("tensorflow", "2.13.0")):
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / f"{name}-{version}-py3-none-any.whl").write_bytes(
            wheel(name, version, f"__version__ = {version!r}\n"))
    # a folder listing is a simple-repository page: one link per file
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    monkeypatch.setenv("UV_DEFAULT_INDEX", url)
    yield url
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


def test_a_framework_image_gets_its_framework_at_the_images_version_or_the_nearest_above(tmp_path, framework_index):
    cache = Environments(tmp_path / "cache")
    torch_2_1 = cache.prepare(named("pytorch-training:2.1.0-py310"), lambda line: None)
    assert torch_2_1.manifest["installed"] == {"torch": "2.1.0"} and torch_2_1.manifest["differences"] == []
    assert versions(torch_2_1.root, "torch", "tensorflow", "sklearn") == {
        "torch": "2.1.0", "tensorflow": "ImportError", "sklearn": "ImportError"}
    tensorflow = cache.prepare(named("tensorflow-training:2.13.0-py310"), lambda line: None)
    assert versions(tensorflow.root, "tensorflow", "torch") == {"tensorflow": "2.13.0", "torch": "ImportError"}
    # 1.13.1 has no wheel in this index: the nearest version above it, and the report says why
    torch_1_13 = cache.prepare(named("pytorch-training:1.13.1-py39"), lambda line: None)
    assert torch_1_13.manifest["differences"] == [
        ["torch", "1.13.1", "2.0.0", f"no wheel of torch 1.13.1 installs on Python {images.PYTHON} "
                                     f"({platform.machine()})"]]


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
