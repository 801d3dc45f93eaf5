"""The closing lines of a run or retry, whichever target ran it: outcome, metrics, the registered model, where
the report is, a one-line count of the settings the local engine did not enforce, and the command to run next."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines import next_steps
from pipelines.atomic import write_output
from pipelines.results import RunResult


def finish_run(result: RunResult, summary_json: Path | None, reasons_shown: bool = False, store: Path | None = None,
               all_unenforced: bool = False) -> int:
    """Print the closing lines, write the summary if asked; returns the exit code. ``reasons_shown``: the
    progress lines already gave the failing step's reason (plain output), so it is not repeated."""
    print_result(result, reasons_shown, store, all_unenforced)
    if summary_json:
        write_output(json.dumps(result.to_json(), indent=2, default=str), str(summary_json))
    return result.exit_code


def print_result(result: RunResult, reasons_shown: bool = False, store: Path | None = None,
                 all_unenforced: bool = False) -> None:
    """The closing lines of a run: outcome, metrics, registered model, transform output, what to do next."""
    print(f"Execution {result.execution_id}: {result.status}")
    if result.failed_step and reasons_shown:
        print(f"Failed step: {result.failed_step} (its reason is above)")
    elif result.failed_step or (result.failure_reason and result.status != "Succeeded"):
        print(f"Failed step: {result.failed_step or '(execution)'}: {result.failure_reason}")
    if "auc" in result.metrics:
        print(f"Model test AUC: {result.metrics['auc']:.4f}")
    if result.registered_model:
        m = result.registered_model
        print(f"Registered: {m['ModelPackageGroupName']} version {m['ModelPackageVersion']} ({m['ModelApprovalStatus']})")
    if result.report:
        local = result.report.local_path
        print(f"Evaluation report: {Path(local).resolve().as_uri() if local else result.report.s3_uri}")
    if result.transform_output:
        print(f"Batch transform output: {result.transform_output}")
    for note in result.notes:
        print(f"note: {note}")
    _print_unenforced(result, store, all_unenforced)
    following = next_command(result, store)
    if following:
        print(f"Next: {following}")


def _print_unenforced(result: RunResult, store: Path | None, all_unenforced: bool) -> None:
    if not result.unenforced:
        return
    from pipelines.local.unenforced import report_lines

    lines = report_lines(result.unenforced)
    if all_unenforced:
        print("Accepted but not enforced by the local engine:")
        for line in lines:
            print(f"  {line}")
        return
    listing = next_steps.command("pipelines.run", "describe", result.execution_id, "--not-enforced", store=store)
    print(f"Accepted but not enforced by the local engine: {len(lines)} settings ({listing} lists them)")


def next_command(result: RunResult, store: Path | None) -> str | None:
    """What to run after this execution: approve what it registered, deploy what it registered Approved, or
    retry it once the cause of its failure is fixed."""
    if result.status in ("Failed", "Stopped"):
        return next_steps.after_failure(result.execution_id, result.target, store)
    model = result.registered_model
    if result.status != "Succeeded":
        return None
    if not model:  # a batch-scoring run: scores with no endpoint, so one kept running may go
        return next_steps.endpoints(result.target, store) if result.transform_output else None
    return next_steps.after_version(model["ModelPackageGroupName"], int(model["ModelPackageVersion"]),
                                    model["ModelApprovalStatus"], result.target, store)
