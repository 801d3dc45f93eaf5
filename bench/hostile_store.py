"""Hostile and unlucky inputs against the store's own files and the surfaces added around them: execution
records, locks, logs, callback records, the registry's and MLflow's files, published job outputs, a job's
requirements, tuning sizes, and the studio's requests.

Each case plants or sends what an attacker (or a job program running without the sandbox) would, beside a
sentinel folder holding a secret, and says how it ended, as ``hostile_surfaces.py`` counts: ``refused``,
``worked``, ``escaped`` (the sentinel changed, or its secret was shown), ``lost``, ``hung`` or ``traceback``.
It prints one line a case, then a table a surface with the count of each outcome.

    python bench/hostile_store.py

Nothing is asserted; the tests (``tests/pipelines/local/test_hostile_records.py`` and siblings) assert.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from bench.hostile_surfaces import CASE_SECONDS, OUTCOMES, _cli, _one_line_refusal  # noqa: E402
from bench.reliability import job, snapshot  # noqa: E402
from pipelines.errors import PipelineError  # noqa: E402
from pipelines.local import callbacks  # noqa: E402
from pipelines.local.engine import LocalEngine, RunOptions  # noqa: E402
from pipelines.local.registry import Registry  # noqa: E402
from pipelines.local.store import Store  # noqa: E402

SECRET = "the-sentinel's-secret"
Case = Callable[[], str]


class Bench:
    """A work folder with a sentinel beside the stores, and a store holding one finished execution."""

    def __init__(self, work: Path):
        self.work = work
        self.sentinel = work / "sentinel"
        (self.sentinel / "victim").mkdir(parents=True)
        (self.sentinel / "victim" / "secret.txt").write_text(SECRET)
        self.finished = work / "finished"
        record = self.engine(self.finished).run(
            {"Version": "2020-12-01", "Parameters": [], "Steps": [job("A", "print('hello')"),
                                                                   job("B", "raise SystemExit(3)", ("A",))]},
            "hostile", {})
        self.execution_id = record.execution_id

    @staticmethod
    def engine(root: Path) -> LocalEngine:
        return LocalEngine(Store(root), Registry(root / "registry.sqlite"), lambda step, line: None,
                           lambda record: None, RunOptions())

    def store(self) -> Path:
        """A fresh copy of the finished store, for one case to spoil."""
        copy = Path(tempfile.mkdtemp(dir=self.work)) / "store"
        shutil.copytree(self.finished, copy, symlinks=True)
        return copy

    def secret(self) -> Path:
        return self.sentinel / "victim" / "secret.txt"


def judged(bench: Bench, case: Case) -> str:
    """The case's outcome, made ``escaped`` if the sentinel changed, ``hung`` past the time limit."""
    before = snapshot(bench.sentinel)
    found: dict[str, str] = {}

    def target() -> None:
        try:
            found["outcome"] = case()
        except subprocess.TimeoutExpired:
            found["outcome"] = "hung"
        except PipelineError:
            found["outcome"] = "refused"
        except Exception as exc:  # noqa: BLE001 - a case that blows up is a fault of what it tried
            found["outcome"] = f"traceback ({type(exc).__name__}: {str(exc)[:100]})"

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(CASE_SECONDS * 2)
    if thread.is_alive():
        return "hung"
    if snapshot(bench.sentinel) != before:
        return "escaped (the sentinel changed)"
    return found["outcome"]


def cli_case(*argv: str) -> str:
    """A command's outcome: refused in one line, worked, a traceback; escaped if it showed the secret."""
    result = _cli("-m", "pipelines.run", *argv)
    if SECRET in result.stdout + result.stderr:
        return "escaped (the secret was shown)"
    return _one_line_refusal(result)


# -- records, locks and logs --------------------------------------------------------------------------------

def record_cases(bench: Bench) -> dict[str, Case]:
    ident = bench.execution_id

    def linked_record_folder() -> str:
        root = bench.store()
        elsewhere = bench.sentinel.parent / f"elsewhere-{os.getpid()}-{id(root)}"
        shutil.copytree(root / "executions" / ident, elsewhere)
        shutil.rmtree(root / "executions" / ident)
        (root / "executions" / ident).symlink_to(elsewhere)
        before = snapshot(elsewhere)
        outcome = cli_case("retry", ident, "--store", str(root))
        return outcome if snapshot(elsewhere) == before else "escaped (retry wrote through the link)"

    def linked(relative: str, *argv: str, fifo: bool = False) -> Case:
        def case() -> str:
            root = bench.store()
            path = root / relative.replace("ID", ident)
            if path.exists():
                path.unlink()
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(path) if fifo else path.symlink_to(bench.secret())
            return cli_case(*[a.replace("ID", ident) for a in argv], "--store", str(root))
        return case

    def linked_job_folder() -> str:
        root = bench.store()
        shutil.rmtree(root / "jobs" / ident)
        (bench.sentinel / "victim" / "B").mkdir(exist_ok=True)
        (root / "jobs" / ident).symlink_to(bench.sentinel / "victim")
        try:
            record = bench.engine(root).retry(ident)
        finally:
            shutil.rmtree(bench.sentinel / "victim" / "B", ignore_errors=True)
        reason = record.step("B").failure_reason or ""
        return "refused" if "is a symbolic link" in reason else f"worked ({reason[:80]})"

    return {
        "records: execution.json linked to a secret (describe)": linked("executions/ID/execution.json", "describe", "ID"),
        "records: execution.json a FIFO (executions)": linked("executions/ID/execution.json", "executions", fifo=True),
        "records: the execution folder linked outside (retry)": linked_record_folder,
        "records: the .lock linked to a secret (retry)": linked("executions/ID/.lock", "retry", "ID"),
        "records: definition.json linked to a secret (retry)": linked("executions/ID/definition.json", "retry", "ID"),
        "logs: job.log linked to a secret (logs)": linked("jobs/ID/A/job.log", "logs", "ID", "A"),
        "logs: job.log a FIFO (logs)": linked("jobs/ID/A/job.log", "logs", "ID", "A", fifo=True),
        "jobs: the job folder's parent linked outside (retry wipes it)": linked_job_folder,
    }


# -- callbacks, the registry and tracking ---------------------------------------------------------------------

def callback_cases(bench: Bench) -> dict[str, Case]:
    def planted(content: str | None, *argv: str, lock: bool = False) -> Case:
        def case() -> str:
            root = bench.store()
            token = callbacks.new_token()
            callbacks.send_message(Store(root), token, "https://sqs.us-east-1.amazonaws.com/111122223333/q",
                                   "arn:p/e", {}, {"execution_id": "e", "step": "Approve"})
            record = root / "callbacks" / f"{token}.json"
            if lock:
                (root / "callbacks" / f"{token}.lock").symlink_to(bench.secret())
            elif content is None:
                record.unlink()
                record.symlink_to(bench.secret())
            else:
                record.write_text(content)
            before = record.read_bytes() if not record.is_symlink() else None
            outcome = cli_case("callbacks", *[a.replace("TOKEN", token) for a in argv], "--store", str(root))
            if before is not None and record.read_bytes() != before and outcome == "refused":
                return "lost (a refused answer changed the record)"
            return outcome
        return case

    def listing(content: str) -> Case:
        def case() -> str:
            root = bench.store()
            (root / "callbacks").mkdir()
            (root / "callbacks" / "AAAAAAAAAA.json").write_text(content)
            result = _cli("-m", "pipelines.run", "callbacks", "list", "--store", str(root))
            if "Traceback" in result.stderr:
                return f"traceback ({result.stderr.strip().splitlines()[-1][:100]})"
            return "refused" if result.returncode == 0 and "warning:" in result.stderr else "worked"
        return case

    def registry_events() -> str:
        root = bench.store()
        registry = Registry(root / "registry.sqlite")
        registry.register("Leads", "PendingManualApproval", {"Containers": [{"Image": "i", "ModelDataUrl": "s3://b/m"}]})
        events = root / "events" / "model-package-state-change.jsonl"
        events.unlink()
        events.symlink_to(bench.secret())
        try:
            registry.set_approval("Leads", 1, "Approved")
        except PipelineError:
            return "refused" if registry.describe("Leads", 1)["ModelApprovalStatus"] != "Approved" else "lost"
        return "worked"

    def tracking_database() -> str:
        from pipelines.tracking import STORE, track
        from pipelines.local import executions

        root = bench.store()
        (root / "mlflow").mkdir()
        (root / "mlflow" / "mlflow.db").symlink_to(bench.secret())
        warnings: list[str] = []
        record = executions.load(root, bench.execution_id)
        track(record, executions.load_definition(root, bench.execution_id), Store(root), STORE, None, "", warnings.append)
        return "refused" if warnings and "is not a regular file" in warnings[0] else "worked"

    return {
        "callbacks: a record that is a list (callbacks list)": listing("[1, 2]"),
        "callbacks: a record 100,000 levels deep (callbacks list)": listing("[" * 100000),
        "callbacks: a record without token or message (succeed)": planted('{"status": "Waiting"}', "succeed", "TOKEN"),
        "callbacks: a record linked to a secret (succeed)": planted(None, "succeed", "TOKEN"),
        "callbacks: the .lock linked to a secret (succeed)": planted("", "succeed", "TOKEN", lock=True),
        "registry: the events file linked to a secret (approve)": registry_events,
        "tracking: mlflow.db linked to a secret": tracking_database,
    }


# -- published outputs ----------------------------------------------------------------------------------------

def output_cases(bench: Bench) -> dict[str, Case]:
    def leaves(code: str) -> Case:
        def case() -> str:
            root = Path(tempfile.mkdtemp(dir=bench.work)) / "store"
            record = bench.engine(root).run({"Version": "2020-12-01", "Parameters": [], "Steps": [
                job("A", "import os, socket; open('/opt/ml/processing/out/first.csv', 'w').write('1'); " + code)]},
                "hostile", {})
            published = list((root / "s3").rglob("first.csv"))
            if record.status == "Succeeded":
                return "worked"
            reason = record.step("A").failure_reason or ""
            if published:
                return "lost (half of the output was published)"
            return "refused" if reason.startswith("ClientError") else f"worked ({reason[:80]})"
        return case

    secret = str(bench.secret())
    return {
        "outputs: a FIFO in the output folder": leaves("os.mkfifo('/opt/ml/processing/out/pipe')"),
        "outputs: a socket in the output folder": leaves(
            "socket.socket(socket.AF_UNIX).bind('/opt/ml/processing/out/sock')"),
        "outputs: a link to a file outside": leaves(f"os.symlink({secret!r}, '/opt/ml/processing/out/leak')"),
        "outputs: a link to a folder outside": leaves("os.symlink('/etc', '/opt/ml/processing/out/etc')"),
    }


# -- a job's requirements --------------------------------------------------------------------------------------

def requirement_cases(bench: Bench) -> dict[str, Case]:
    from pipelines.local.environments.requirements import with_requirements

    def requiring(text: str) -> Case:
        def case() -> str:
            source = Path(tempfile.mkdtemp(dir=bench.work)) / "code"
            source.mkdir()
            (source / "requirements.txt").write_text(text.replace("SECRET", str(bench.secret())))
            (source / "outside").symlink_to(bench.sentinel / "victim")
            said: list[str] = []
            try:
                with_requirements(bench.work / "environments", source / "requirements.txt", None, said.append)
            except PipelineError as exc:
                said.append(str(exc))
                outcome = "refused"
            else:
                outcome = "worked"
            return "escaped (the secret was shown)" if any(SECRET in line for line in said) else outcome
        return case

    return {
        "requirements: -r a file outside the job's folder": requiring("-r SECRET\n"),
        "requirements: -c a file outside": requiring("-c SECRET\n"),
        "requirements: -e a folder outside": requiring("-e /etc\n"),
        "requirements: a local path through a link out": requiring("./outside/secret.txt\n"),
        "requirements: --find-links outside": requiring("--find-links /etc\nsomething\n"),
        "requirements: ${HOME} in a path": requiring("-r ${HOME}/.netrc\n"),
    }


# -- tuning sizes ---------------------------------------------------------------------------------------------

XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def tuning_step(change: Callable[[dict], object]) -> dict:
    """A Random search over two ranges, as the SDK writes a Tuning step, then changed by ``change``."""
    config = {"Strategy": "Random", "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
              "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2},
              "ParameterRanges": {"IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1", "MaxValue": "5"}],
                                  "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.01", "MaxValue": "0.5"}]}}
    channel = [{"ChannelName": name, "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://b/{name}"}}}
               for name in ("train", "validation")]
    step = {"Name": "Tune", "Type": "Tuning", "Arguments": {"HyperParameterTuningJobConfig": config, "TrainingJobDefinition": {
        "StaticHyperParameters": {"objective": "binary:logistic", "num_round": "5"},
        "AlgorithmSpecification": {"TrainingImage": XGBOOST, "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::111122223333:role/Bench", "InputDataConfig": channel,
        "OutputDataConfig": {"S3OutputPath": "s3://b/tuning"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600}}}}
    change(config)
    return step


def tuning_cases(bench: Bench) -> dict[str, Case]:
    def validated(change: Callable[[dict], object]) -> Case:
        def case() -> str:
            path = Path(tempfile.mkdtemp(dir=bench.work)) / "definition.json"
            path.write_text(json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": [tuning_step(change)]}))
            return cli_case("validate", "--definition", str(path))
        return case

    def limit(name: str, value: object) -> Callable[[dict], object]:
        return lambda config: config["ResourceLimits"].update({name: value})

    def grid(config: dict) -> None:
        config.update(Strategy="Grid", ParameterRanges={"CategoricalParameterRanges": [
            {"Name": f"h{i}", "Values": [str(v) for v in range(20)]} for i in range(6)]})
        config["ResourceLimits"].pop("MaxNumberOfTrainingJobs")

    return {
        "tuning: a billion training jobs": validated(limit("MaxNumberOfTrainingJobs", 1_000_000_000)),
        "tuning: 101 parallel training jobs": validated(limit("MaxParallelTrainingJobs", 101)),
        "tuning: a grid of 64 million combinations": validated(grid),
        "tuning: a count written as a string": validated(limit("MaxNumberOfTrainingJobs", "5")),
        "tuning: a range without a Name": validated(
            lambda config: config["ParameterRanges"]["IntegerParameterRanges"][0].pop("Name")),
        "tuning: MinValue above MaxValue": validated(
            lambda config: config["ParameterRanges"]["IntegerParameterRanges"][0].update(MinValue="9")),
    }


# -- studio requests ------------------------------------------------------------------------------------------

def studio_cases(bench: Bench) -> tuple[dict[str, Case], Callable[[], None]]:
    import http.client
    import secrets

    import uvicorn

    from pipelines.config import build_config
    from pipelines.studio.app import create_app

    token = secrets.token_hex(16)
    config = build_config(("bench", {"role_arn": "arn:aws:iam::111122223333:role/Bench", "bucket": "sagemaker-local"}))
    server = uvicorn.Server(uvicorn.Config(create_app(bench.finished, config, token), host="127.0.0.1", port=0,
                                           log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    headers = {"Cookie": f"studio_token={token}", "X-Studio-Token": token, "Content-Type": "application/json"}

    def request(method: str, path: str, body: bytes = b"") -> Case:
        def case() -> str:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CASE_SECONDS)
            try:
                connection.request(method, path, body, headers)
                response = connection.getresponse()
                text = response.read().decode("utf-8", errors="replace")
            finally:
                connection.close()
            if SECRET in text:
                return "escaped (the secret was shown)"
            if response.status >= 500:
                return f"traceback (HTTP {response.status})"
            return "refused" if response.status >= 400 else "worked"
        return case

    ident = bench.execution_id
    cases = {
        "studio: a body nested 100,000 levels": request("POST", "/api/pipelines/hostile/start",
                                                        b"[" * 100_000 + b"]" * 100_000),
        "studio: a 7 MiB body": request("POST", "/api/pipelines/hostile/start", b" " * (7 << 20)),
        "studio: a version of '\u00b2'": request("GET", "/registry/Leads/%C2%B2"),
        "studio: an execution id with '..'": request("GET", "/executions/..%2F..%2Fetc"),
        "studio: Stop of an execution no launcher runs": request("POST", f"/api/executions/{ident}/stop", b"{}"),
        "studio: an unknown parameter holding a credential": request("POST", "/api/pipelines/hostile/start",
                                                      b'{"parameters": {"Note": "AKIAIOSFODNN7EXAMPLE"}}'),
    }

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return cases, stop


# -- the runner -----------------------------------------------------------------------------------------------

SURFACES: dict[str, Callable[[Bench], dict[str, Case]]] = {
    "records, locks and logs": record_cases,
    "callbacks, registry, tracking": callback_cases,
    "published outputs": output_cases,
    "a job's requirements": requirement_cases,
    "tuning sizes": tuning_cases,
}


def run_all(work: Path) -> dict[str, dict[str, int]]:
    """Every case, printed one a line; per surface, the count of each outcome."""
    bench = Bench(work)
    studio, stop_studio = studio_cases(bench)
    surfaces = {**{surface: cases(bench) for surface, cases in SURFACES.items()}, "studio requests": studio}
    table: dict[str, dict[str, int]] = {}
    try:
        for surface, cases in surfaces.items():
            counts = table.setdefault(surface, dict.fromkeys(OUTCOMES, 0))
            for title, case in cases.items():
                outcome = judged(bench, case)
                counts[outcome.split(" ")[0]] += 1
                print(f"  {outcome}: {title}", flush=True)
    finally:
        stop_studio()
    return table


def print_table(table: dict[str, dict[str, int]]) -> None:
    """One row a surface: tried, then each outcome's count."""
    width = max(len(surface) for surface in table)
    print(f"{'surface':<{width}}  tried  " + "  ".join(f"{name:>9}" for name in OUTCOMES))
    for surface, counts in {**table, "all": {name: sum(c[name] for c in table.values()) for name in OUTCOMES}}.items():
        print(f"{surface:<{width}}  {sum(counts.values()):>5}  " + "  ".join(f"{counts[n]:>9}" for n in OUTCOMES))


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="hostile-store-") as tmp:
        print("Hostile inputs against the store's own files:")
        table = run_all(Path(tmp))
    print_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
