"""The framework images' library table, and the not-enforced report that names how a job's libraries differ."""

from __future__ import annotations

import json
import platform
import re
from importlib import metadata

import pytest

from pipelines.local import image_libraries
from pipelines.local.environments import Environments
from pipelines.local.image_libraries import (IMAGES, Library, engine_differences, framework_images, images_in,
                                             libraries_of, named)
from tests.pipelines.local.helpers import definition, engine, script_step

SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:{}-cpu-py3"
XGBOOST = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:{}"


@pytest.mark.parametrize("uri, repository, version", [
    (SKLEARN.format("0.23-1"), "sagemaker-scikit-learn", "0.23-1"),
    (SKLEARN.format("1.2-1"), "sagemaker-scikit-learn", "1.2-1"),
    (XGBOOST.format("1.7-1"), "sagemaker-xgboost", "1.7-1"),
    ("257758044811.dkr.ecr.us-east-2.amazonaws.com/sagemaker-xgboost:3.0-5-cpu-py3", "sagemaker-xgboost", "3.0-5"),
])
def test_a_framework_image_uri_finds_its_version(uri, repository, version):
    found = libraries_of(uri)
    assert (found.repository, found.version) == (repository, version)


@pytest.mark.parametrize("uri", [SKLEARN.format("9.9-9"), "111122223333.dkr.ecr.us-east-1.amazonaws.com/theirs:1.0",
                                 "python:3.11", ""])
def test_other_images_are_not_in_the_table(uri):
    assert libraries_of(uri) is None and engine_differences(uri) is None


def test_the_differences_name_the_python_and_every_library_that_differs():
    line = engine_differences(SKLEARN.format("0.23-1"))
    assert f"Python 3.7.10 (here {platform.python_version()})" in line
    assert f"pandas 1.1.3 (here {metadata.version('pandas')})" in line
    assert f"scikit-learn 0.23.2 (here {metadata.version('scikit-learn')})" in line
    assert "aws/sagemaker-scikit-learn-container@0.23-1" in line


def test_a_range_the_installed_version_satisfies_is_no_difference():
    image = IMAGES[("sagemaker-scikit-learn", "1.4-2")]
    assert dict(image.pins)["pandas"] == ">=2.0.0" and int(metadata.version("pandas").split(".")[0]) >= 2
    assert "pandas" not in (engine_differences(SKLEARN.format("1.4-2")) or "")


def test_every_entry_says_where_it_was_read():
    for image in IMAGES.values():
        assert image.source.startswith(("aws/sagemaker-scikit-learn-container@", "aws/sagemaker-xgboost-container@"))
        assert dict(image.pins)  # at least one pin


def test_a_processing_step_reports_the_image_environment_it_ran_on(tmp_path):
    record = engine(tmp_path / "store")[0].run(definition(script_step("A", "print(1)")), "p", {})
    [line] = [line for line in record.step("A").unenforced if line.startswith("AppSpecification.ImageUri = ")]
    assert ": the job runs on the sagemaker-scikit-learn:1.2-1 image's libraries (boto3 1.28.57, numpy 1.24.1, " in line
    assert "scikit-learn 1.2.1" in line and "pandas 1.1.3 -> 1.5." in line
    # the rest of the image's world that differs, by name (the build manifest says why)
    assert "; of the rest of its world, awscli AWS CLI v2 -> 1.29." in line
    assert "mlio-py 0.9.0 -> not installed" in line and "sagemaker-training" not in line  # built from source
    assert line.endswith("(the environment's build manifest says why)")


def test_with_image_libraries_off_a_processing_step_reports_how_this_interpreters_differ(tmp_path):
    record = engine(tmp_path / "store", environments=Environments(image_libraries="engine"))[0].run(
        definition(script_step("A", "print(1)")), "p", {})
    [line] = [line for line in record.step("A").unenforced if line.startswith("AppSpecification.ImageUri = ")]
    assert "the sagemaker-scikit-learn:1.2-1 image's libraries" in line and "scikit-learn 1.2.1 (here" in line


def test_an_image_is_named_by_repository_and_version_or_by_its_uri():
    assert named("sagemaker-xgboost:1.7-1") is named(XGBOOST.format("1.7-1")) is IMAGES[("sagemaker-xgboost", "1.7-1")]
    with pytest.raises(ValueError, match="'sagemaker-xgboost:9.9-9' is not an image of the table; one of: "):
        named("sagemaker-xgboost:9.9-9")


def test_the_images_a_definition_uses_are_found_once_each():
    steps = [script_step("A", "1"), script_step("B", "2"), {"Name": "T", "Type": "Training", "Arguments": {
        "AlgorithmSpecification": {"TrainingImage": XGBOOST.format("1.7-1")}}},
        {"Name": "P", "Type": "Training", "Arguments": {"AlgorithmSpecification": {"TrainingImage": {"Get": "Parameters.I"}}}}]
    assert [i.name for i in images_in(definition(*steps))] == ["sagemaker-scikit-learn:1.2-1", "sagemaker-xgboost:1.7-1"]


PYTORCH_URI = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1.0-cpu-py310-ubuntu20.04-sagemaker"
TENSORFLOW_URI = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-training:2.13.0-gpu-py310-cu118-ubuntu20.04-sagemaker"


@pytest.mark.parametrize("uri, name, python, pin", [
    (PYTORCH_URI, "pytorch-training:2.1.0-py310", "3.10", ("torch", "2.1.0")),
    (TENSORFLOW_URI, "tensorflow-training:2.13.0-py310", "3.10", ("tensorflow", "2.13.0")),
])
def test_a_pytorch_or_tensorflow_training_image_has_its_framework_and_python(uri, name, python, pin):
    image = libraries_of(uri)
    assert (image.name, image.python, image.pins) == (name, python, (pin,))
    assert image.source.startswith("sagemaker-core ") and named(name) is image
    assert f"{pin[0]} {pin[1]} (here " in engine_differences(uri)


def test_a_framework_version_the_sdk_does_not_know_is_not_in_the_table():
    assert libraries_of(PYTORCH_URI.replace("2.1.0", "9.9.9")) is None


# --- the image's Python world, as data with the source of every line

def _data_lines():
    """(where, name, line, sources) for every line of the data file: images, framework ranges and versions."""
    data = json.loads(image_libraries.DATA.read_text())
    for image, entry in data["images"].items():
        yield image, "python", entry["python"], entry["sources"]
        for part in ("pins", "world"):
            for name, line in entry[part].items():
                yield f"{image} {part}", name, line, entry["sources"]
    for repository, framework in data["frameworks"].items():
        for part in framework["ranges"]:
            for name, line in part["world"].items():
                yield f"{repository} {part['versions']}", name, line, framework["sources"]
        for version, lines in framework.get("versions", {}).items():
            for name, line in lines.items():
                yield f"{repository} {version}", name, line, framework["sources"]


def test_every_line_of_the_data_says_where_it_was_read():
    lines = list(_data_lines())
    assert len(lines) > 400
    for where, name, line, sources in lines:
        assert 2 <= len(line) <= 3, (where, name, line)
        source = sources[line[1]]
        # a repository at a tag (and the file), or the Miniconda installer the Dockerfile names
        assert re.match(r"^(aws|awslabs)/[a-z-]+@\S+", source) or source.startswith("Miniconda3-"), (where, name, source)
        if source.startswith("Miniconda3-") or "lower bound" in source:
            assert "lower bound" in source and line[0][:2] in (">=", "no", "AW"), (where, name, line)


@pytest.mark.parametrize("image", [*IMAGES.values(), *framework_images().values()], ids=lambda image: image.name)
def test_every_image_has_pip_setuptools_wheel_requests_and_awscli_in_its_world(image):
    world = {library.name for library in image.world}
    assert {"pip", "setuptools", "wheel", "requests", "awscli"} <= world
    assert all(library.source for library in image.world)


def test_the_world_says_what_each_image_has_from_its_sources():
    world = {name: {library.name: library for library in IMAGES[name].world} for name in IMAGES}
    sklearn_1_2 = world[("sagemaker-scikit-learn", "1.2-1")]
    assert (sklearn_1_2["pyarrow"].version, sklearn_1_2["urllib3"].version) == ("14.0.1", "1.26.17")
    assert sklearn_1_2["pyarrow"].source.endswith("@1.2-1:docker/1.2-1/base/Dockerfile.cpu")
    assert sklearn_1_2["requests"].source.startswith("Miniconda3-py39_24.7.1-0 base environment")
    assert sklearn_1_2["awscli"].described and sklearn_1_2["awscli"].version == "AWS CLI v2"
    assert sklearn_1_2["sagemaker-training"].from_source and not sklearn_1_2["sagemaker-training"].unavailable
    assert world[("sagemaker-xgboost", "1.7-1")]["awscli"].version == "not in the image"
    assert world[("sagemaker-xgboost", "0.90-2")]["pip"].version == ">=20.1,<20.2"  # conda install pip=20.1
    assert world[("sagemaker-scikit-learn", "1.4-2")]["requests"].version == "not in the image"  # no conda there
    assert not Library("pyarrow", "14.0.1", "s").described and Library("pyarrow", "14.0.1", "s").satisfied("14.0.1")
    assert not Library("awscli", "AWS CLI v2", "s").satisfied("1.29.57")


def test_a_pytorch_image_has_its_versions_torchvision_and_its_ranges_libraries():
    torch = {library.name: library for library in named("pytorch-training:2.1.0-py310").world}
    assert (torch["torchvision"].version, torch["torchaudio"].version) == ("0.16.0", "2.1.0")
    assert torch["torchvision"].source == ("aws/deep-learning-containers@v1.21-pt-sagemaker-2.1.0-tr-py310:pytorch/"
                                           "training/docker/2.1/py3/Dockerfile.sagemaker.cpu.core_packages.json")
    assert torch["urllib3"].version == ">=1.26.18,<2" and "scikit-learn" in torch
    tensorflow = {library.name for library in named("tensorflow-training:2.13.0-py310").world}
    assert {"numpy", "scipy", "pandas", "scikit-learn", "h5py", "boto3"} <= tensorflow
