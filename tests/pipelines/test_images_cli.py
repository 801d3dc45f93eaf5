"""``python -m pipelines.run images``: list the image environments and prepare them, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def images(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.run", "images", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def test_prepare_builds_a_named_image_and_list_shows_it_built():
    prepared = images("prepare", "sagemaker-scikit-learn:1.2-1")
    assert prepared.returncode == 0, prepared.stderr
    assert "sagemaker-scikit-learn:1.2-1: ready in " in prepared.stdout
    listed = images("list")
    assert listed.returncode == 0
    [line] = [line for line in listed.stdout.splitlines() if "sagemaker-scikit-learn:1.2-1" in line]
    assert line.split()[1:4] == ["3.9", line.split()[2], "MB"] and "boto3 1.28.57" in line
    assert any("sagemaker-xgboost:0.90-2" in line and "not built" in line for line in listed.stdout.splitlines())
    rows = {row["image"]: row for row in json.loads(images("list", "--json").stdout)}
    built = rows["sagemaker-scikit-learn:1.2-1"]
    assert built["built"] and built["python"] == "3.9" and built["libraries"]["numpy"] == "1.24.1"
    assert built["libraries"]["pandas"].startswith("1.5.") and not rows["sagemaker-xgboost:0.90-2"]["built"]


def test_prepare_takes_the_images_named_and_those_a_definition_file_uses(tmp_path):
    from tests.pipelines.local.helpers import definition, script_step

    path = tmp_path / "definition.json"
    path.write_text(json.dumps(definition(script_step("A", "print(1)"), script_step("B", "print(2)"))))
    prepared = images("prepare", "sagemaker-xgboost:1.7-1", "--definition", str(path))
    assert prepared.returncode == 0, prepared.stderr
    ready = [line.split(": ready in ")[0] for line in prepared.stdout.splitlines() if ": ready in " in line]
    assert ready == ["sagemaker-xgboost:1.7-1", "sagemaker-scikit-learn:1.2-1"]


def test_an_image_not_in_the_table_is_one_line_and_exit_2():
    refused = images("prepare", "sagemaker-xgboost:9.9-9")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("error: 'sagemaker-xgboost:9.9-9' is not an image of the table; one of: ")
    assert len(refused.stderr.splitlines()) == 1


def test_a_definition_with_no_image_of_the_table_says_so(tmp_path):
    path = tmp_path / "definition.json"
    path.write_text(json.dumps({"Version": "2020-12-01", "Steps": [
        {"Name": "F", "Type": "Fail", "Arguments": {"ErrorMessage": "no"}}]}))
    refused = images("prepare", "--definition", str(path))
    assert refused.returncode == 2 and f"error: {path} uses no image of the table; name one: " in refused.stderr
