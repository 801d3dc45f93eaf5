"""The command a user runs next, written so that it works as pasted from where they are: the interpreter
they ran, the store they used (named only when it is not the default) or ``--target sagemaker``."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

DEFAULT_STORE = Path(".sagemaker-local")


def python() -> str:
    """How to start this interpreter from the current directory: ``python`` when that is it, else its path."""
    on_path = shutil.which("python")
    # not the resolved paths: a virtualenv's python links to the system's, which lacks this package
    if on_path and os.path.abspath(on_path) == os.path.abspath(sys.executable):
        return "python"
    relative = os.path.relpath(sys.executable)
    return relative if not relative.startswith("..") else sys.executable


def command(module: str, *words: str, target: str = "local", store: Path | None = None) -> str:
    """``python -m MODULE WORDS...`` with the target's flags: ``--store`` unless it is the default one."""
    flags: list[str] = []
    if target == "sagemaker":
        flags = ["--target", "sagemaker"]
    elif store is not None and Path(store).resolve() != DEFAULT_STORE.resolve():
        flags = ["--store", str(store)]
    return " ".join([python(), "-m", module, *(shlex.quote(w) for w in (*words, *flags))])


def approve(group: str, version: int, target: str, store: Path | None) -> str:
    """The command that approves a registered version (its reason is the user's to write)."""
    return command("pipelines.registry", "approve", group, str(version), "--description", "Reviewed: ...",
                   target=target, store=store)


def deploy(group: str, version: int, target: str, store: Path | None, endpoint: str = "lead-scoring") -> str:
    """The command that deploys an Approved version."""
    return command("pipelines.deploy", "deploy", "--group", group, "--version", str(version), "--endpoint-name",
                   endpoint, target=target, store=store)


def after_version(group: str, version: int, status: str, target: str, store: Path | None) -> str | None:
    """What a registered version needs next: approving when it waits for review, deploying once Approved."""
    if status == "PendingManualApproval":
        return approve(group, version, target, store)
    if status == "Approved":
        return deploy(group, version, target, store)
    return None


def retry(execution_id: str, target: str, store: Path | None) -> str:
    """The command that resumes an execution from its failed or never-run steps."""
    return command("pipelines.run", "retry", execution_id, target=target, store=store)


def after_failure(execution_id: str, target: str, store: Path | None) -> str:
    """What a failed or stopped execution needs: its cause fixed, then the retry that resumes it."""
    return f"fix the cause, then {retry(execution_id, target, store)}"


def invoke(endpoint: str, input_file: str, output_file: str, target: str, store: Path | None) -> str:
    """The command that scores a CSV file of leads through an endpoint."""
    return command("inference.invoke", "--endpoint-name", endpoint, "--input", input_file, "--output", output_file,
                   target=target, store=store)


def invoke_sample(input_file: str, id_columns: int, target: str = "local", store: Path | None = None) -> str:
    """The command that scores a file of sample leads through the endpoint `deploy` names by default."""
    return command("inference.invoke", "--endpoint-name", "lead-scoring", "--input", input_file, "--output",
                   "scores.csv", *(["--id-columns", str(id_columns)] if id_columns else []), target=target, store=store)


def batch_scoring(target: str, store: Path | None) -> str:
    """The command that scores a whole prefix of leads with the latest Approved version, no endpoint."""
    return command("pipelines.run", "--pipeline", "batch-scoring", target=target, store=store)


def endpoints(target: str, store: Path | None) -> str:
    """The command that lists the endpoints (one no longer needed: ``undeploy NAME``)."""
    return command("pipelines.deploy", "endpoints", target=target, store=store)


def new_run(target: str, store: Path | None) -> str:
    """The command that runs the lead-scoring pipeline again: the next model of the daily loop."""
    return command("pipelines.run", target=target, store=store)


def after_execution(execution_id: str, status: str, target: str, store: Path | None) -> str | None:
    """What to run after reading an execution: resume it once its failure is fixed, or review the versions it
    registered; None while it runs."""
    if status in ("Failed", "Stopped"):
        return after_failure(execution_id, target, store)
    if status == "Succeeded":
        return command("pipelines.registry", "list", target=target, store=store)
    return None
