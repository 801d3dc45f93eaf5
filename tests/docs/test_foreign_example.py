"""The foreign-pipelines page's ready example runs as pasted: `stage` copies the example's scripts and data
into a fresh store, then the exported definition runs unchanged."""

from __future__ import annotations

import shutil

from tests.docs.test_walkthrough import DOCS, REPO, bash_blocks, run_block
from tests.sandboxing import needs_container_paths


@needs_container_paths
def test_the_ready_example_is_staged_and_runs_as_pasted(tmp_path) -> None:
    [block] = [block for block in bash_blocks(DOCS / "foreign-pipelines.md") if "stage --definition" in block]
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    result = run_block(block, tmp_path)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    staged = tmp_path / "abalone-store" / "s3" / "sagemaker-us-east-1-111122223333"
    assert (staged / "code" / "preprocess.py").read_bytes() == (REPO / "examples/abalone/preprocess.py").read_bytes()
    assert (staged / "abalone" / "abalone-dataset.csv").is_file()
    assert "Succeeded" in result.stdout and "RegisterAbaloneModel-RegisterModel" in result.stdout
