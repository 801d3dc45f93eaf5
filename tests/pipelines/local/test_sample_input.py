"""Sample data at a run's empty input: another row count is another input, so a cached step runs again."""

from __future__ import annotations

import io
import json
from pathlib import Path

from pipelines.config import build_config
from pipelines.local.target import LocalTarget
from pipelines.progress import Progress
from tests.pipelines.local.helpers import script_step

COUNT = ("import glob, pathlib; rows = sum(len(open(p).read().splitlines()) for p in "
         "glob.glob('/opt/ml/processing/in/*.csv')); pathlib.Path('/opt/ml/processing/out/rows.txt')"
         ".write_text(str(rows))")


def _definition(tmp_path: Path) -> Path:
    step = script_step("Count", COUNT, cache=True, retry=False)
    step["Arguments"]["ProcessingInputs"] = [{"InputName": "in", "S3Input": {
        "S3Uri": {"Get": "Parameters.InputDataUrl"}, "LocalPath": "/opt/ml/processing/in", "S3DataType": "S3Prefix"}}]
    path = tmp_path / "count.json"
    path.write_text(json.dumps({"Version": "2020-12-01", "Steps": [step], "Parameters": [
        {"Name": "InputDataUrl", "Type": "String", "DefaultValue": "s3://bkt/leads/"}]}))
    return path


def _run(tmp_path: Path, rows: int | None) -> tuple[object, str]:
    config = build_config(("test", {"bucket": "bkt", "role_arn": "arn:aws:iam::123456789012:role/R",
                                    "mlflow_tracking_uri": "off"}))
    target = LocalTarget(config, tmp_path / "store", definition_file=_definition(tmp_path), sample_rows=rows)
    out = io.StringIO()
    result = target.run(target.prepare(), {}, Progress("t", stream=out, live=False))
    return result, out.getvalue()


def _counted(tmp_path: Path, result) -> str:
    return (tmp_path / "store" / "s3" / "bkt" / "runs" / result.execution_id / "Count" / "rows.txt").read_text()


def test_a_smaller_sample_after_a_larger_one_is_read_not_the_cached_larger_one(tmp_path):
    first, _ = _run(tmp_path, 500)
    assert first.status == "Succeeded" and _counted(tmp_path, first) == "500"
    second, said = _run(tmp_path, 300)
    assert second.status == "Succeeded"
    assert _counted(tmp_path, second) == "300"  # not a cache hit on the 500-row input
    assert "300 rows of sample lead data" in said and "s3://bkt/leads-sample-300-rows (InputDataUrl)" in said
    again, said = _run(tmp_path, 300)
    assert "cache hit from execution " + second.execution_id in said  # the same sample is the same input


def test_sample_rows_at_an_input_holding_data_say_they_are_not_used(tmp_path):
    mine = tmp_path / "store" / "s3" / "bkt" / "leads"
    mine.mkdir(parents=True)
    (mine / "part-0.csv").write_text("1,2\n0,3\n")
    result, said = _run(tmp_path, 300)
    assert result.status == "Succeeded" and _counted(tmp_path, result) == "2"
    assert "--sample-rows 300 not used: InputDataUrl s3://bkt/leads/ already holds data" in said
