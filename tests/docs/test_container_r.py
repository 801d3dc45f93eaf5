"""The container page's local test of the R image runs as pasted, on splits laid out as a local run's
PrepareData writes them (the walkthrough's test runs it again on a real run's splits)."""

from __future__ import annotations

import re

from tests.container.helpers import leads, write_csv
from tests.docs.test_walkthrough import DOCS, bash_blocks, run_block
from tests.sandboxing import needs_bubblewrap, needs_r


def r_block() -> str:
    [block] = [block for block in bash_blocks(DOCS / "container.md") if "--image r" in block]
    return block


@needs_r
@needs_bubblewrap
def test_the_r_images_local_test_runs_as_pasted(tmp_path) -> None:
    splits = tmp_path / ".sagemaker-local/s3/sagemaker-local/lead-scoring/local-0123456789ab/PrepareData"
    write_csv(splits / "train" / "part-00000.csv", leads(2000, 1))
    write_csv(splits / "validation" / "validation.csv", leads(800, 2))
    write_csv(splits / "test" / "test.csv", leads(500, 3))
    result = run_block(r_block(), tmp_path)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "validation:auc=" in result.stdout and (tmp_path / "ml-r" / "model" / "model.rds").is_file()
    scores = [line for line in result.stdout.splitlines() if re.fullmatch(r"[0-9.e-]+", line)]
    assert len(scores) == 3 and all(0 <= float(score) <= 1 for score in scores), result.stdout
