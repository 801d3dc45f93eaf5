"""The documentation: the site builds with warnings as errors, and the walkthrough's commands run as
written, in order, on a fresh store (then the container page's local test of our image)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def bash_blocks(page: Path) -> list[str]:
    """The ```bash blocks of a page, in order (a ```shell block, such as the virtualenv's activation, is
    shown, not run: the test puts this interpreter first on PATH, which is what activating does)."""
    return re.findall(r"^```bash\n(.*?)^```$", page.read_text(), re.MULTILINE | re.DOTALL)


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                           cwd=REPO, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, built.stdout + built.stderr
    for page in ("index", "walkthrough", "pipeline", "cli", "local-engine", "serving", "container"):
        assert (tmp_path / "site" / ("index.html" if page == "index" else f"{page}/index.html")).is_file(), page


def test_every_page_is_in_the_site_and_the_readme_links_to_pages_that_exist():
    nav = (REPO / "mkdocs.yml").read_text()
    assert sorted(p.name for p in DOCS.glob("*.md")) == sorted(re.findall(r": (\S+\.md)$", nav, re.MULTILINE))
    linked = re.findall(r"\]\((docs/[^)#]+)", (REPO / "README.md").read_text())
    assert linked and all((REPO / link).is_file() for link in linked)


def run_block(block: str, cwd: Path) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "PIPELINE_", "MLFLOW_"))}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    # a process group of its own: what the block started in the background stops with it, even when it failed
    process = subprocess.Popen(["bash", "-euo", "pipefail", "-c", block], cwd=cwd, env=environment, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=900)
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_the_walkthrough_runs_as_written_and_each_step_names_the_next(tmp_path):
    blocks = bash_blocks(DOCS / "walkthrough.md")
    assert len(blocks) == 8
    said = []
    for block in blocks:
        result = run_block(block, tmp_path)
        assert result.returncode == 0, f"{block}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        said.append(result.stdout)
    run, report, approve, deploy, invoke, curl, bulk, undeploy = said
    assert "Registered: LeadScoringModels version 1 (PendingManualApproval)" in run
    assert "20000 rows of sample lead data in 4 files under s3://" in run  # the rows asked for, in a prefix of
    assert "/input/raw-sample-20000-rows (InputDataUrl)" in run  # their own: never an earlier sample's cache hit
    assert report.splitlines()[-1] == ("Next: python -m pipelines.registry approve LeadScoringModels 1 --description "
                                       "'Reviewed: ...'")
    assert run.splitlines()[-1] == ("Next: python -m pipelines.registry approve LeadScoringModels 1 --description "
                                    "'Reviewed: ...'")
    assert "LeadScoringModels version 1: Approved" in approve
    assert ("Next: python -m pipelines.deploy deploy --group LeadScoringModels --version 1 --endpoint-name "
            "lead-scoring") in approve
    assert "Endpoint lead-scoring: InService, serving LeadScoringModels version 1" in deploy
    assert "Next: python -m pipelines.run sample-data --rows 1000 --output leads.csv\n      python -m inference.invoke " \
           "--endpoint-name lead-scoring --input leads.csv --output scores.csv\n" in deploy
    assert len((tmp_path / "scores.csv").read_text().splitlines()) == 1000
    assert ("Next: python -m inference.invoke --endpoint-name lead-scoring --input leads.csv --output scores.csv\n"
            in invoke) and "Next: python -m pipelines.run --pipeline batch-scoring\n" in invoke
    assert [0 <= float(score) <= 1 for score in invoke.split()[-3:]] == [True] * 3
    assert [0 <= float(score) <= 1 for score in curl.split()] == [True, True]
    assert "scoring with LeadScoringModels version 1, the latest Approved" in bulk
    assert bulk.splitlines()[-1] == "Next: python -m pipelines.deploy endpoints"
    assert "Endpoint lead-scoring: deleted" in undeploy and undeploy.splitlines()[-1] == "Next: python -m pipelines.run"

    # the container page's local test of our image, on the splits the run above made
    [container] = [block for block in bash_blocks(DOCS / "container.md") if block.startswith("SPLITS=")]
    result = run_block(container, tmp_path)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    scores = [line for line in result.stdout.splitlines() if re.fullmatch(r"[0-9.e-]+", line)]
    assert len(scores) == 3 and all(0 <= float(score) <= 1 for score in scores), result.stdout
