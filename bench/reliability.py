"""Reliability check: hostile inputs against the local store's containment, and crashes against retry.

Hostile inputs: our own definition mutated (step names, S3 URIs, an expression building a URI,
processing LocalPaths, a hostile parameter value) and stores seeded with symbolic links, each run
on the local engine beside a sentinel folder. An input is *refused* when the engine refuses the
definition or fails the step once with a ClientError, and *escaped* when anything in the sentinel
folder changed.

Crash points: a small pipeline (a job, a RegisterModel step, a job) run with
``python -m pipelines.run --definition`` is killed with SIGKILL at spread-out moments, and once
right after the registry commit; each killed execution is then finished with ``retry``. It counts
the executions ``retry`` completed and the duplicate model versions left in the registry.

Serving, scoring and the S3 endpoint (``bench/hostile_surfaces.py``): hostile and unlucky inputs against
the S3 endpoint for job programs, the archive extractor and model loading, a local endpoint,
``invoke-endpoint``, the registry and the container's programs, each counted as refused, worked, escaped,
lost, hung or a traceback.

    python bench/reliability.py [--crash-points 8] [--surfaces-only]

It prints the counts; nothing is asserted.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from bench import hostile_surfaces  # noqa: E402
from pipelines.config import build_config  # noqa: E402
from pipelines.errors import PipelineError  # noqa: E402
from pipelines.lead_scoring import build  # noqa: E402
from pipelines.local.engine import LocalEngine, RunOptions  # noqa: E402
from pipelines.local.graph import walk_steps  # noqa: E402
from pipelines.local.registry import Registry  # noqa: E402
from pipelines.local.store import Store  # noqa: E402

BUCKET = "sagemaker-local"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def job(name: str, code: str, depends_on: tuple[str, ...] = ()) -> dict[str, Any]:
    """A processing step running ``code`` with python, its 'out' folder published under the execution."""
    return {"Name": name, "Type": "Processing", "DependsOn": list(depends_on), "Arguments": {
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5}},
        "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": ["python3", "-c", code]},
        "RoleArn": "arn:aws:iam::111122223333:role/Bench",
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": {"Std:Join": {"On": "/", "Values": [f"s3://{BUCKET}/runs", {"Get": "Execution.PipelineExecutionId"},
                                                         name]}},
            "LocalPath": "/opt/ml/processing/out", "S3UploadMode": "EndOfJob"}}]}}}


def with_input(step: dict[str, Any]) -> dict[str, Any]:
    step["Arguments"]["ProcessingInputs"] = [{"InputName": "in", "S3Input": {
        "S3Uri": f"s3://{BUCKET}/data/", "LocalPath": "/opt/ml/processing/in", "S3DataType": "S3Prefix"}}]
    return step


def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


# -- hostile inputs --------------------------------------------------------------------------

Case = Callable[[dict[str, Any], Path, Path], tuple[dict[str, Any], dict[str, Any]]]


def _step(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(step for step, _ in walk_steps(document["Steps"]) if step["Name"] == name)


def _mutate(change: Callable[[dict[str, Any]], None]) -> Case:
    def case(ours: dict[str, Any], store: Path, outside: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        document = copy.deepcopy(ours)
        change(document)
        Store(store).put_bytes(b"1,2\n", f"s3://{BUCKET}/in/a.csv")
        return document, {"InputDataUrl": f"s3://{BUCKET}/in/"}
    return case


def _rename(step: str, name: str) -> Case:
    return _mutate(lambda d: _step(d, step).update(Name=name))


def _input_uri(uri: Any) -> Case:
    return _mutate(lambda d: _step(d, "PrepareData")["Arguments"]["ProcessingInputs"][1]["S3Input"].update(S3Uri=uri))


def _output(**fields: Any) -> Case:
    return _mutate(lambda d: _step(d, "PrepareData")["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]
                   .update(**fields))


def _input_path(path: str) -> Case:
    return _mutate(lambda d: _step(d, "PrepareData")["Arguments"]["ProcessingInputs"][0]["S3Input"]
                   .update(LocalPath=path))


def _parameter(uri: str) -> Case:
    def case(ours: dict[str, Any], store: Path, outside: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        return copy.deepcopy(ours), {"InputDataUrl": uri}
    return case


def _linked(where: str, target: str, read: bool) -> Case:
    def case(ours: dict[str, Any], store: Path, outside: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        link = store / "s3" / BUCKET / where
        link.parent.mkdir(parents=True, exist_ok=True)
        (store / "s3" / BUCKET / "data").mkdir(parents=True, exist_ok=True)
        (store / "s3" / BUCKET / "data" / "rows.csv").write_text("1,2\n")
        os.symlink(outside / target, link)
        code = ("print(open('/opt/ml/processing/in/rows.csv').read())" if read
                else "open('/opt/ml/processing/out/x.txt', 'w').write('x')")
        return {"Version": "2020-12-01", "Parameters": [], "Steps": [with_input(job("A", code))]}, {}
    return case


def _leaves_link(ours: dict[str, Any], store: Path, outside: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    code = f"import os; os.symlink({str(outside / 'data.csv')!r}, '/opt/ml/processing/out/leak.csv')"
    return {"Version": "2020-12-01", "Parameters": [], "Steps": [job("A", code)]}, {}


HOSTILE: dict[str, Case] = {
    "step name ../../../victim in a branch": _rename("QualityGateFailed", "../../../victim"),
    "step name x/../../../../outside/m": _rename("CreateModel", "x/../../../../outside/m"),
    "key with a leading /": _input_uri(f"s3://{BUCKET}//tmp/x/"),
    "bucket ..": _input_uri("s3://../registry.sqlite"),
    "key with .. segments": _input_uri(f"s3://{BUCKET}/a/../../../outside/"),
    "bucket shaped as an IP address": _input_uri("s3://192.168.0.1/x"),
    "output URI built by Std:Join with ..": _output(
        S3Uri={"Std:Join": {"On": "/", "Values": [f"s3://{BUCKET}", "..", "..", "..", "outside"]}}),
    "output LocalPath climbing out": _output(LocalPath="/opt/ml/processing/../../../../outside"),
    "output LocalPath outside /opt/ml/processing": _output(LocalPath="/tmp/elsewhere"),
    "input LocalPath climbing out": _input_path("/opt/ml/processing/input/../../../../../outside/victim"),
    "parameter value with bucket ..": _parameter("s3://../registry.sqlite"),
    "parameter value with a leading /": _parameter(f"s3://{BUCKET}//etc/"),
    "output prefix linked outside": _linked("runs", "victim", read=False),
    "input object linked outside": _linked("data/linked.csv", "data.csv", read=True),
    "input sub-folder linked outside": _linked("data/more", "victim", read=True),
    "job output holding a link": _leaves_link,
}


def refused(run: Callable[[], Any]) -> bool:
    """True if the engine refused the definition, or failed a step once with a ClientError."""
    try:
        record = run()
    except PipelineError:
        return True
    failed = [s for s in record.steps if s.status == "Failed"]
    return record.status == "Failed" and all(s.attempts == 1 and "ClientError" in (s.failure_reason or "")
                                             for s in failed) and bool(failed)


def hostile_inputs(work: Path) -> tuple[int, int, int]:
    config = build_config(("bench", {"role_arn": "arn:aws:iam::123456789012:role/R", "bucket": BUCKET}))
    ours = build(config).definition_dict
    tried = refusals = escapes = 0
    for index, (title, case) in enumerate(HOSTILE.items()):
        root = work / f"hostile-{index}"
        outside, store = root / "outside", root / "store"
        (outside / "victim").mkdir(parents=True)
        (outside / "victim" / "keep.txt").write_text("precious")
        (outside / "data.csv").write_text("9,9\n")
        before = snapshot(outside)
        document, overrides = case(ours, store, outside)
        engine = LocalEngine(Store(store), Registry(store / "registry.sqlite"), lambda step, line: None,
                             lambda record: None, RunOptions(sleep=lambda seconds: None))
        was_refused = refused(lambda: engine.run(document, "hostile", overrides))
        escaped = snapshot(outside) != before
        tried, refusals, escapes = tried + 1, refusals + was_refused, escapes + escaped
        print(f"  {'refused' if was_refused else 'ACCEPTED'}{'  ESCAPED' if escaped else ''}: {title}")
    return tried, refusals, escapes


# -- crash points ----------------------------------------------------------------------------

def crash_definition(model_uri: str) -> dict[str, Any]:
    register = {"Name": "Register", "Type": "RegisterModel", "DependsOn": ["Before"], "Arguments": {
        "ModelPackageGroupName": "Bench", "ModelApprovalStatus": "PendingManualApproval",
        "InferenceSpecification": {"Containers": [{"Image": IMAGE, "ModelDataUrl": model_uri}],
                                   "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}}}
    pause = "import time; time.sleep(0.5); open('/opt/ml/processing/out/x', 'w').write('x')"
    return {"Version": "2020-12-01", "Parameters": [], "Steps": [
        job("Before", pause), register, job("After", pause, depends_on=("Register",))]}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.run", *args]


def crash_once(root: Path, definition: Path, kill: Callable[[Path, float], bool]) -> tuple[bool, bool, int]:
    """(crashed with an execution to retry, retry completed it, model versions registered)."""
    store = root / "store"
    process = subprocess.Popen(cli("--store", str(store), "--definition", str(definition)), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    recorded = None  # moments count from when the execution is first recorded
    while process.poll() is None:
        if recorded is None and (store / "executions").exists():
            recorded = time.monotonic()
        if recorded is not None and kill(store, time.monotonic() - recorded):
            break
        time.sleep(0.01)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    executions = [p.name for p in (store / "executions").iterdir()] if (store / "executions").exists() else []
    record = store / "executions" / executions[0] / "execution.json" if executions else None
    crashed = bool(record and record.exists() and json.loads(record.read_text())["status"] != "Succeeded")
    completed = False
    if crashed:
        retry = subprocess.run(cli("retry", executions[0], "--store", str(store)), cwd=REPO, capture_output=True,
                               text=True, timeout=300)
        completed = retry.returncode == 0
    versions = len(Registry(store / "registry.sqlite").list("Bench")) if (store / "registry.sqlite").exists() else 0
    return crashed, completed, versions


def crash_points(work: Path, count: int) -> tuple[int, int, int, int]:
    definition = work / "crash.json"
    definition.write_text(json.dumps(crash_definition(f"s3://{BUCKET}/models/model.tar.gz")))
    timing = work / "timing" / "store"
    process = subprocess.Popen(cli("--store", str(timing), "--definition", str(definition)), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while process.poll() is None and not (timing / "executions").exists():
        time.sleep(0.01)
    began = time.monotonic()
    process.wait()
    total = time.monotonic() - began

    def after_commit(store: Path, elapsed: float) -> bool:
        events = store / "events" / "model-package-state-change.jsonl"
        return events.exists() and events.stat().st_size > 0

    kills = [("right after the registry commit", after_commit)]
    kills += [(f"{total * k / (count + 1):.2f}s after it was recorded", lambda store, elapsed, at=total * k / (count + 1): elapsed >= at)
              for k in range(1, count + 1)]
    tried = completed = duplicates = 0
    for index, (title, kill) in enumerate(kills):
        crashed, done, versions = crash_once(work / f"crash-{index}", definition, kill)
        if not crashed:
            print(f"  killed {title}: the execution had already ended")
            continue
        tried, completed, duplicates = tried + 1, completed + done, duplicates + max(versions - 1, 0)
        print(f"  killed {title}: retry {'completed it' if done else 'FAILED'}; {versions} version(s) registered")
    return tried, completed, duplicates, len(kills)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crash-points", type=int, default=8, help="evenly spread SIGKILL moments (plus one after commit)")
    parser.add_argument("--surfaces-only", action="store_true", help="only serving, scoring and the S3 endpoint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        work = Path(tmp)
        if not args.surfaces_only:
            print("Hostile inputs:")
            tried, refusals, escapes = hostile_inputs(work)
            print("Crash points:")
            crashes, completed, duplicates, moments = crash_points(work, args.crash_points)
        print("Serving, scoring and the S3 endpoint:")
        (work / "surfaces").mkdir()
        surfaces = hostile_surfaces.run_all(work / "surfaces")
    if not args.surfaces_only:
        print(f"hostile inputs: {tried} tried, {refusals} refused, {escapes} escaped")
        print(f"crash points: {crashes} tried (of {moments} kill moments), {completed} completed by retry, "
              f"{duplicates} duplicate model versions")
    print(f"serving, scoring and the S3 endpoint: {sum(surfaces.values())} tried, "
          + ", ".join(f"{count} {name}" for name, count in surfaces.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
