"""The framework images' library table, and the not-enforced report that names how a job's libraries differ."""

from __future__ import annotations

import platform
from importlib import metadata

import pytest

from pipelines.local.image_libraries import IMAGES, differences, libraries_of
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
    assert libraries_of(uri) is None and differences(uri) is None


def test_the_differences_name_the_python_and_every_library_that_differs():
    line = differences(SKLEARN.format("0.23-1"))
    assert f"Python 3.7.10 (here {platform.python_version()})" in line
    assert f"pandas 1.1.3 (here {metadata.version('pandas')})" in line
    assert f"scikit-learn 0.23.2 (here {metadata.version('scikit-learn')})" in line
    assert "aws/sagemaker-scikit-learn-container@0.23-1" in line


def test_a_range_the_installed_version_satisfies_is_no_difference():
    image = IMAGES[("sagemaker-scikit-learn", "1.4-2")]
    assert dict(image.pins)["pandas"] == ">=2.0.0" and int(metadata.version("pandas").split(".")[0]) >= 2
    assert "pandas" not in (differences(SKLEARN.format("1.4-2")) or "")


def test_every_entry_says_where_it_was_read():
    for image in IMAGES.values():
        assert image.source.startswith(("aws/sagemaker-scikit-learn-container@", "aws/sagemaker-xgboost-container@"))
        assert dict(image.pins)  # at least one pin


def test_a_processing_step_reports_how_its_image_libraries_differ(tmp_path):
    record = engine(tmp_path / "store")[0].run(definition(script_step("A", "print(1)")), "p", {})
    [line] = [line for line in record.step("A").unenforced if line.startswith("AppSpecification.ImageUri = ")]
    assert "the sagemaker-scikit-learn:1.2-1 image's libraries" in line and "scikit-learn 1.2.1 (here" in line
