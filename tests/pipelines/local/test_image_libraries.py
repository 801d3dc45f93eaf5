"""The framework images' library table, and the not-enforced report that names how a job's libraries differ."""

from __future__ import annotations

import platform
from importlib import metadata

import pytest

from pipelines.local.environments import Environments
from pipelines.local.image_libraries import IMAGES, engine_differences, images_in, libraries_of, named
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
