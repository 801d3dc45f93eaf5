"""The settings the local engine does not enforce are the same whether a step ran or was a cache hit."""

from __future__ import annotations

import io
import json

from pipelines.config import build_config
from pipelines.local.target import LocalTarget
from pipelines.progress import Progress
from tests.pipelines.local.helpers import script_step


def test_a_cache_hit_reports_what_its_job_reported_when_it_ran(tmp_path):
    step = script_step("Work", "open('/opt/ml/processing/out/a.txt', 'w').write('a')", cache=True, retry=False)
    path = tmp_path / "work.json"
    path.write_text(json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": [step]}))
    config = build_config(("test", {"bucket": "bkt", "role_arn": "arn:aws:iam::123456789012:role/R",
                                    "mlflow_tracking_uri": "off"}))
    (tmp_path / "store").mkdir()
    target = LocalTarget(config, tmp_path / "store", definition_file=path)
    ran, hit = (target.run(target.prepare(), {}, Progress("t", stream=io.StringIO(), live=False)) for _ in range(2))
    assert ran.status == hit.status == "Succeeded"
    assert [s.cache_hit_from for s in hit.steps if s.name == "Work"] == [ran.execution_id]
    reported_by_the_job = [line for line in ran.unenforced["Work"] if line.startswith("AppSpecification.ImageUri")]
    assert reported_by_the_job  # the stand-in for the image is said at run time, by the executor
    assert hit.unenforced == ran.unenforced  # so `run` says the same count both times
