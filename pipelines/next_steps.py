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


def retry(execution_id: str, target: str, store: Path | None) -> str:
    """The command that resumes an execution from its failed or never-run steps."""
    return command("pipelines.run", "retry", execution_id, target=target, store=store)


def invoke(endpoint: str, input_file: str, output_file: str, target: str, store: Path | None) -> str:
    """The command that scores a CSV file of leads through an endpoint."""
    return command("inference.invoke", "--endpoint-name", endpoint, "--input", input_file, "--output", output_file,
                   target=target, store=store)
