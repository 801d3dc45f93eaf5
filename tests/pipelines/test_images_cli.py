"""``python -m pipelines.run images``: list the image environments and prepare them, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

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
    assert built["world"]["requests"] and built["packages"]["pip"] and "more packages" in listed.stdout


def test_show_lists_an_images_libraries_as_in_the_image_and_here():
    assert images("prepare", "sagemaker-scikit-learn:1.2-1").returncode == 0
    shown = images("show", "sagemaker-scikit-learn:1.2-1")
    assert shown.returncode == 0, shown.stderr
    rows = {line.split()[0]: line.split()[1:] for line in shown.stdout.splitlines() if line.strip()}
    assert rows["scikit-learn"][:2] == ["1.2.1", "1.2.1"] and rows["awscli"][:3] == ["AWS", "CLI", "v2"]
    assert rows["requests"][1] not in ("not", "") and "Also" in rows
    unbuilt = images("show", "sagemaker-xgboost:0.90-2")
    assert unbuilt.returncode == 0 and "images prepare sagemaker-xgboost:0.90-2" in unbuilt.stdout


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


def _prepared(monkeypatch, capsys, *argv: str) -> tuple[int, list[str], str]:
    """``images prepare ARGV`` in this process, the builder replaced by one that records what it is asked for:
    (exit code, the images asked for, stderr)."""
    from pipelines.cli.main import main
    from pipelines.local.environments import Environments

    asked: list[str] = []

    def prepare(self, image, log):
        asked.append(image.name)
        return SimpleNamespace(root=Path("/nowhere") / image.name)

    monkeypatch.setattr(Environments, "prepare", prepare)
    capsys.readouterr()
    code = main(["images", "prepare", *argv])
    return code, asked, capsys.readouterr().err


def _stored(store: Path, name: str, document: dict, execution_id: str) -> None:
    """An execution of pipeline ``name`` in ``store`` that kept ``document``, as a run leaves it."""
    from pipelines.local import executions

    executions.save_definition(store, execution_id, document)
    executions.ExecutionRecord(execution_id, name, "Succeeded", {}, executions.now()).save(store)


def test_prepare_takes_the_images_of_a_pipeline_in_the_store_by_name(tmp_path, monkeypatch, capsys):
    from tests.pipelines.local.helpers import definition, script_step

    store = tmp_path / "store"
    _stored(store, "TeamPipeline", definition(script_step("A", "print(1)")), "exec-1")
    code, asked, err = _prepared(monkeypatch, capsys, "--pipeline", "TeamPipeline", "--store", str(store))
    assert code == 0, err
    assert asked == ["sagemaker-scikit-learn:1.2-1"]


def test_prepare_takes_the_images_of_one_of_our_pipelines_by_name(tmp_path, monkeypatch, capsys):
    code, asked, err = _prepared(monkeypatch, capsys, "--pipeline", "lead-scoring", "--store", str(tmp_path / "none"))
    assert code == 0, err
    assert asked == ["sagemaker-scikit-learn:1.2-1", "sagemaker-xgboost:1.7-1"]
    assert not (tmp_path / "none").exists()


def test_an_unknown_pipeline_name_is_one_line_listing_the_known_names(tmp_path, monkeypatch, capsys):
    store = tmp_path / "store"
    _stored(store, "TeamPipeline", {"Version": "2020-12-01", "Steps": []}, "exec-1")
    code, asked, err = _prepared(monkeypatch, capsys, "--pipeline", "Nope", "--store", str(store))
    assert code == 2 and asked == [] and len(err.splitlines()) == 1, err
    assert err.startswith("error: no pipeline 'Nope'") and "lead-scoring, batch-scoring" in err
    assert "TeamPipeline" in err


def test_a_pipeline_using_no_image_of_the_table_says_so(tmp_path, monkeypatch, capsys):
    store = tmp_path / "store"
    _stored(store, "Failing", {"Version": "2020-12-01", "Steps": [
        {"Name": "F", "Type": "Fail", "Arguments": {"ErrorMessage": "no"}}]}, "exec-1")
    code, asked, err = _prepared(monkeypatch, capsys, "--pipeline", "Failing", "--store", str(store))
    assert code == 2 and asked == [] and "error: pipeline Failing uses no image of the table; name one: " in err
