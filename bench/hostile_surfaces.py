"""Hostile and unlucky inputs against serving, scoring and the S3 endpoint for job programs (used by reliability.py).

Each case does what a hostile or unlucky user would and says how it ended:

- ``refused``: a clear refusal (an S3 or HTTP error, or one line and a non-zero exit), nothing changed;
- ``worked``: it did what S3, SageMaker or the container would do;
- ``escaped``: something was written or read outside where it belongs;
- ``lost``: data was lost, duplicated or corrupted;
- ``hung``: no answer within the case's time limit;
- ``traceback``: a Python traceback or an HTTP 500 where the input was at fault.
"""

from __future__ import annotations

import gzip
import http.client
import io
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
OUTCOMES = ("refused", "worked", "escaped", "lost", "hung", "traceback")
CASE_SECONDS = 60


def _traceback(stderr: str) -> str:
    """``traceback`` with the exception's last line, to say which fault it was."""
    return f"traceback ({stderr.strip().splitlines()[-1][:120]})"


def _one_line_refusal(result: subprocess.CompletedProcess) -> str:
    if "Traceback" in result.stderr:
        return _traceback(result.stderr)
    return "refused" if result.returncode != 0 and result.stderr.strip().count("\n") == 0 else "worked"


def _cli(*argv: str, timeout: float = CASE_SECONDS) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=timeout)


# -- the S3 endpoint ----------------------------------------------------------------------------------------

def s3_cases(work: Path) -> dict[str, Callable[[], str]]:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    from pipelines.local.s3_endpoint import S3Endpoint
    from pipelines.local.store import Store

    store = Store(work / "s3-store")
    store.put_bytes(b"precious", "s3://bkt/object")
    store.put_bytes(b"below", "s3://bkt/folder/inside")
    endpoint = S3Endpoint(store, "us-east-1").__enter__()
    env = endpoint.job_environment()
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="y",
                      config=Config(read_timeout=15, retries={"total_max_attempts": 1}))

    def outcome(call: Callable[[], Any], check: Callable[[], bool] = lambda: True) -> str:
        try:
            call()
        except ClientError as exc:
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            if status >= 500:
                return f"traceback (HTTP {status}: {exc.response['Error'].get('Message', '')[:100]})"
            return "refused" if check() else "lost"
        except Exception as exc:  # noqa: BLE001 - a read timeout is a hang, anything else a fault
            if "timeout" in type(exc).__name__.lower() or "timed out" in str(exc):
                return "hung"
            return f"traceback ({type(exc).__name__}: {str(exc)[:100]})"
        return "worked" if check() else "lost"

    def round_trips(key: str, body: bytes) -> Callable[[], str]:
        """Put, then list and get: worked if both give it back, refused if the put was an S3 error."""
        def case() -> str:
            accepted = outcome(lambda: s3.put_object(Bucket="bkt", Key=key, Body=body))
            if accepted != "worked":
                return accepted
            try:
                listed = [o["Key"] for o in s3.list_objects_v2(Bucket="bkt", Prefix=key).get("Contents", [])]
                back = s3.get_object(Bucket="bkt", Key=key)["Body"].read()
            except ClientError:
                return "lost"
            return "worked" if back == body and key in listed else "lost"
        return case

    def intact() -> bool:
        return store.path("s3://bkt/object").read_bytes() == b"precious"

    def multipart(part_number: str) -> str:
        upload = s3.create_multipart_upload(Bucket="bkt", Key="mp")["UploadId"]
        etag = s3.upload_part(Bucket="bkt", Key="mp", UploadId=upload, PartNumber=1, Body=b"p")["ETag"]
        xml = (f"<CompleteMultipartUpload><Part><PartNumber>{part_number}</PartNumber><ETag>{etag}</ETag></Part>"
               "</CompleteMultipartUpload>").encode()
        return _http_outcome(endpoint.url, "POST", f"/bkt/mp?uploadId={upload}", xml, {})

    def race() -> str:
        """One upload's completion, abort and a new part 1 at once, 30 times: each answers as S3 would in some
        order (never 500), and the object is the completed parts whole or absent."""
        outcomes, first = [], b"x" * (1 << 20)
        for attempt in range(30):
            key = f"race/{attempt}"
            upload = s3.create_multipart_upload(Bucket="bkt", Key=key)["UploadId"]
            parts = [{"PartNumber": 1, "ETag": s3.upload_part(Bucket="bkt", Key=key, UploadId=upload, PartNumber=1,
                                                              Body=first)["ETag"]}]
            calls = [lambda: s3.complete_multipart_upload(Bucket="bkt", Key=key, UploadId=upload,
                                                          MultipartUpload={"Parts": parts}),
                     lambda: s3.abort_multipart_upload(Bucket="bkt", Key=key, UploadId=upload),
                     lambda: s3.upload_part(Bucket="bkt", Key=key, UploadId=upload, PartNumber=1, Body=b"y" * 10)]
            racers = [threading.Thread(target=lambda call=call: outcomes.append(outcome(call))) for call in calls]
            for racer in racers:
                racer.start()
            for racer in racers:
                racer.join(timeout=CASE_SECONDS)
            stored = store.path(f"s3://bkt/{key}")
            if stored.exists() and stored.read_bytes() != first:
                outcomes.append("lost")
        faults = [o for o in outcomes if o.startswith("traceback") or o in ("lost", "hung")]
        return faults[0] if faults else "worked"

    def shutdown() -> str:
        other = S3Endpoint(store, "us-east-1").__enter__()
        port = int(other.url.rsplit(":", 1)[1])
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        held[0].sendall(b"GET /bkt/object HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        other.__exit__(None, None, None)
        for raw in held:
            raw.close()
        return "worked" if time.monotonic() - started < 6 and not other._thread.is_alive() else "hung"

    cases = {
        "S3: put_object(Body=b'') (Expect: 100-continue)": round_trips("_SUCCESS", b""),
        "S3: a 6 MiB put": round_trips("big", b"b" * (6 << 20)),
        "S3: folder marker over an object": lambda: outcome(
            lambda: s3.put_object(Bucket="bkt", Key="object/", Body=b""), intact),
        "S3: folder marker, then keys below it": lambda: "worked" if all(
            round_trips(k, b"m")() == "worked" for k in ("dir/", "dir/file")) else "lost",
        "S3: a key below an object": lambda: outcome(lambda: s3.put_object(Bucket="bkt", Key="object/x", Body=b"x"),
                                                     intact),
        "S3: an object over keys below it": lambda: outcome(
            lambda: s3.put_object(Bucket="bkt", Key="folder", Body=b"x"),
            lambda: store.path("s3://bkt/folder/inside").read_bytes() == b"below"),
        "S3: a key starting with .tmp-": round_trips(".tmp-x", b"x"),
        "S3: a 300-byte key segment": round_trips("k" * 300, b"x"),
        "S3: a key over 1024 bytes": round_trips("/".join(["k" * 200] * 6), b"x"),
        "S3: PartNumber not a number": lambda: multipart("one"),
        "S3: a bad aws-chunked size": lambda: _http_outcome(endpoint.url, "PUT", "/bkt/chunked", b"zz\r\nab\r\n0\r\n\r\n",
                                                            {"Content-Encoding": "aws-chunked"}),
        "S3: completion, abort and a new part racing (x30)": race,
        "S3: shutdown with clients connected": shutdown,
    }
    cases["S3: stop the endpoint"] = lambda: (endpoint.__exit__(None, None, None), "worked")[1]
    return cases


def _http_outcome(url: str, method: str, path: str, body: bytes, headers: dict[str, str], timeout: float = 15) -> str:
    host, port = url.split("//")[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request(method, path, body, headers)
        status = connection.getresponse().status
    except (TimeoutError, socket.timeout):
        return "hung"
    finally:
        connection.close()
    return f"traceback (HTTP {status})" if status >= 500 else ("refused" if status >= 400 else "worked")


# -- archives and pickles -------------------------------------------------------------------------------------

def _archive(path: Path, *members: tuple[str, bytes | None, bytes, str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data, kind, link in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, link
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def archive_cases(work: Path) -> dict[str, Callable[[], str]]:
    from processing.archives import ArchiveError, extract

    outside = work / "archive-outside"
    outside.mkdir()
    sentinel = outside / "keep.txt"
    sentinel.write_text("precious")

    def unpacked(*members: tuple[str, bytes | None, bytes, str]) -> Callable[[], str]:
        def case() -> str:
            before = sorted(p.name for p in outside.iterdir())
            archive = _archive(work / f"a{time.monotonic_ns()}.tar.gz", *members)
            try:
                extract(archive, outside / "target")
                result = "worked"
            except ArchiveError:
                result = "refused"
            except Exception:  # noqa: BLE001
                result = "traceback"
            after = sorted(p.name for p in outside.iterdir() if p.name != "target")
            escaped = after != [n for n in before if n != "target"] or sentinel.read_text() != "precious"
            escaped = escaped or Path("/tmp/hostile-absolute").exists()
            return "escaped" if escaped else result
        return case

    def crafted_pickle() -> str:
        import numpy as np
        import xgboost as xgb

        from processing.evaluate import load_booster_file

        elsewhere = outside / "other-model.json"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            xgb.train({}, xgb.DMatrix(np.random.rand(20, 2), label=np.arange(20) % 2), 1).save_model(str(elsewhere))

        class Loads:
            def __reduce__(self):  # type: ignore[no-untyped-def]
                return (xgb.Booster, (None, None, str(elsewhere)))

        crafted = work / "xgboost-model"
        crafted.write_bytes(pickle.dumps(Loads(), protocol=4))
        try:
            load_booster_file(str(crafted))
        except pickle.UnpicklingError:
            return "refused"
        return "escaped"

    file, directory, symlink, hardlink, device = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, \
        tarfile.CHRTYPE
    return {
        "archive: an absolute member": unpacked(("/tmp/hostile-absolute", b"x", file, "")),
        "archive: a '..' member": unpacked(("a/../../keep.txt", b"overwritten", file, "")),
        "archive: a link out, then a file through it": unpacked(("out", None, symlink, ".."),
                                                                ("out/keep.txt", b"overwritten", file, "")),
        "archive: links chained out": unpacked(("here", None, symlink, "."), ("up", None, symlink, "here/..")),
        "archive: a hard link to /etc/passwd": unpacked(("passwd", None, hardlink, "/etc/passwd")),
        "archive: a device": unpacked(("dev", None, device, "")),
        "archive: files, folders and an inside link": unpacked(("d", None, directory, ""), ("d/m", b"m", file, ""),
                                                               ("l", None, symlink, "d/m")),
        "pickle: Booster(model_file=PATH)": crafted_pickle,
    }


# -- a local endpoint -----------------------------------------------------------------------------------------

def _model(work: Path, features: int = 3) -> Path:
    import numpy as np
    import xgboost as xgb

    work = work / f"model-{time.monotonic_ns()}"
    work.mkdir()
    rng = np.random.default_rng(1)
    data = rng.normal(size=(400, features))
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(data, label=data[:, 0] > 0), 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        booster.save_model(str(work / "xgboost-model"))
    with tarfile.open(work / "model.tar.gz", "w:gz") as tar:
        tar.add(work / "xgboost-model", arcname="xgboost-model")
    return work / "model.tar.gz"


def _served(work: Path, name: str) -> tuple[Any, dict[str, Any], str]:
    """A store of its own with an Approved 3-feature model served at local endpoint ``name``:
    (its LocalEndpoints, the model package, the endpoint's URL)."""
    from pipelines.local.endpoints import LocalEndpoints
    from pipelines.local.registry import Registry
    from pipelines.local.store import Store

    store = Store(work / f"{name}-store")
    store.put_file(_model(work), "s3://bkt/model.tar.gz")
    package = Registry(store.root / "registry.sqlite").register(
        name.capitalize(), "Approved", {"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://bkt/model.tar.gz"}]})
    endpoints = LocalEndpoints(store)
    return endpoints, package, endpoints.deploy(name, package)["Url"]


def endpoint_cases(work: Path) -> tuple[dict[str, Callable[[], str]], Callable[[], None]]:
    endpoints, package, url = _served(work, "hostile")
    port = int(url.rsplit(":", 1)[1])

    def chunked() -> str:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        connection.request("POST", "/invocations", body=iter([b"1,2,", b"3\n"]), headers={"Content-Type": "text/csv"},
                           encode_chunked=True)
        response = connection.getresponse()
        status, body = response.status, response.read()
        connection.close()
        return "worked" if status == 200 and len(body.splitlines()) == 1 else "lost"

    def slow_clients() -> str:
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(6)]
        for raw in held:
            raw.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n1,")
        time.sleep(0.5)
        result = _http_outcome(url, "GET", "/ping", b"", {}, timeout=5)
        for raw in held:
            raw.close()
        return result

    def named(name: str) -> str:
        from pipelines.errors import ConfigError

        try:
            endpoints.deploy(name, package)
        except ConfigError:
            return "refused"
        return "worked"

    cases = {
        "endpoint: a chunked body": chunked,
        "endpoint: a 2 MB row of 1M columns": lambda: _http_outcome(url, "POST", "/invocations",
                                                                   b",".join([b"1"] * 1_000_000) + b"\n",
                                                                   {"Content-Type": "text/csv"}, timeout=5),
        "endpoint: a short row among full ones": lambda: _http_outcome(url, "POST", "/invocations", b"1,2,3\n1,2\n",
                                                                      {"Content-Type": "text/csv"}),
        "endpoint: 1e400": lambda: _http_outcome(url, "POST", "/invocations", b"1,2,1e400\n",
                                                 {"Content-Type": "text/csv"}),
        "endpoint: six slow clients, then /ping": slow_clients,
        "endpoint: a name with a trailing newline": lambda: named("hostile\n"),
    }
    return cases, lambda: endpoints.delete("hostile")


# -- invoke-endpoint ----------------------------------------------------------------------------------------------

def invoke_cases(work: Path) -> tuple[dict[str, Callable[[], str]], Callable[[], None]]:
    endpoints, _, _ = _served(work, "scoring")
    store = endpoints.store
    rows = "".join(f"L{i},{i % 7 - 3},{i % 5},{i % 3}\n" for i in range(300_000)).encode()  # ~10 s of scoring
    ids = [f"L{i}" for i in range(300_000)]

    def argv(folder: Path, *extra: str) -> list[str]:
        return ["-m", "inference.invoke", "--endpoint-name", "scoring", "--input", str(folder / "in.csv"), "--output",
                str(folder / "out.csv"), "--id-columns", "1", "--max-payload-bytes", "1500", "--store",
                str(store.root), *extra]

    def interrupted(signum: int) -> Callable[[], str]:
        def case() -> str:
            folder = work / f"invoke-{signum}"
            folder.mkdir()
            (folder / "in.csv").write_bytes(rows)
            for attempt in range(3):
                process = subprocess.Popen([sys.executable, *argv(folder, *(["--resume"] if attempt else []))],
                                           cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                time.sleep(2.5 + attempt)
                if process.poll() is None:
                    os.kill(process.pid, signum)
                _, err = process.communicate(timeout=CASE_SECONDS)
                if "Traceback" in err:
                    return _traceback(err)
            finished = _cli(*argv(folder, "--resume")) if not (folder / "out.csv").exists() else None
            if finished is not None and finished.returncode != 0:
                return "lost"
            got = [line.split(",")[0] for line in (folder / "out.csv").read_text().splitlines()]
            return "worked" if got == ids else "lost"
        return case

    def stopped(folder: Path) -> None:
        """A run stopped by a model error at row 20,001; the cause is then fixed in place."""
        folder.mkdir()
        lines = rows.splitlines()
        lines[20_000] = lines[20_000][:7] + b"x" * (len(lines[20_000]) - 7)  # unreadable, and the same size
        (folder / "in.csv").write_bytes(b"\n".join(lines) + b"\n")
        _cli(*argv(folder))
        (folder / "in.csv").write_bytes(rows)

    def resumed(folder: Path) -> str:
        result = _cli(*argv(folder, "--resume"))
        if result.returncode != 0:
            return _one_line_refusal(result)
        got = [line.split(",")[0] for line in (folder / "out.csv").read_text().splitlines()]
        return "worked" if got == ids else "lost"

    def edited_progress() -> str:
        folder = work / "invoke-edited"
        stopped(folder)
        progress = folder / "out.csv.progress.json"
        progress.write_text(json.dumps({**json.loads(progress.read_text()), "rows": 3}))
        return resumed(folder)

    def changed_input() -> str:
        folder = work / "invoke-changed"
        stopped(folder)
        (folder / "in.csv").write_bytes(rows.replace(b"L1,", b"X1,", 1))  # a scored row, the same size
        result = _cli(*argv(folder, "--resume"))
        return _one_line_refusal(result) if result.returncode else "lost"

    def output_is_input() -> str:
        folder = work / "invoke-same"
        folder.mkdir()
        (folder / "in.csv").write_bytes(rows)
        result = _cli("-m", "inference.invoke", "--endpoint-name", "scoring", "--input", str(folder / "in.csv"),
                      "--output", str(folder / "in.csv"), "--id-columns", "1", "--store", str(store.root))
        return "lost" if (folder / "in.csv").read_bytes() != rows else _one_line_refusal(result)

    def corrupt_gzip() -> str:
        folder = work / "invoke-gzip"
        folder.mkdir()
        damaged = bytearray(gzip.compress(rows))
        damaged[300:360] = b"\xff" * 60
        (folder / "in.csv").write_bytes(bytes(damaged))
        return _one_line_refusal(_cli(*argv(folder)))

    cases = {
        "invoke: Ctrl-C, then --resume (x3)": interrupted(signal.SIGINT),
        "invoke: SIGTERM, then --resume (x3)": interrupted(signal.SIGTERM),
        "invoke: SIGKILL, then --resume (x3)": interrupted(signal.SIGKILL),
        "invoke: a hand-edited progress record": edited_progress,
        "invoke: scored rows changed at the same size": changed_input,
        "invoke: --output equal to --input": output_is_input,
        "invoke: a gzip with a corrupt deflate stream": corrupt_gzip,
    }
    return cases, lambda: endpoints.delete("scoring")


# -- the registry and the container's programs -----------------------------------------------------------------

def registry_and_container_cases(work: Path) -> dict[str, Callable[[], str]]:
    import sqlite3

    from pipelines.local.registry import Registry

    store = work / "registry-store"
    registry = Registry(store / "registry.sqlite")
    for _ in range(2):
        registry.register("Leads", "PendingManualApproval", {"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://b/m"}]})
    with sqlite3.connect(store / "registry.sqlite") as db:
        db.execute("UPDATE model_packages SET inference_specification = 'not json' WHERE version = 2")

    def registry_cli(*argv: str) -> Callable[[], str]:
        return lambda: _one_line_refusal(_cli("-m", "pipelines.registry", *argv, "--store", str(store)))

    def train(change: Callable[[Path], None]) -> Callable[[], str]:
        def case() -> str:
            ml = work / f"ml-{time.monotonic_ns()}"
            (ml / "input" / "config").mkdir(parents=True)
            (ml / "input" / "config" / "hyperparameters.json").write_text('{"num_round": "5", "calibration": "none"}')
            (ml / "input" / "config" / "inputdataconfig.json").write_text('{"train": {}}')
            (ml / "input" / "config" / "resourceconfig.json").write_text('{"current_host": "algo-1", "hosts": ["algo-1"]}')
            (ml / "input" / "data" / "train").mkdir(parents=True)
            (ml / "input" / "data" / "train" / "t.csv").write_text("".join(f"{i % 2},{i},{i % 3}\n" for i in range(200)))
            change(ml)
            result = _cli("-m", "pipelines.container", "train", "--ml-dir", str(ml))
            if "Traceback" in result.stderr:
                return _traceback(result.stderr)
            return "refused" if result.returncode == 2 and (ml / "output" / "failure").is_file() else "worked"
        return case

    def config(name: str, text: str) -> Callable[[Path], None]:
        return lambda ml: (ml / "input" / "config" / name).write_text(text)

    return {
        "registry: a version beyond 64 bits": registry_cli("approve", "Leads", str(2 ** 70), "--description", "x"),
        "registry: a group name that is not UTF-8": registry_cli("describe", "Le\udcffads", "1"),
        "registry: a row whose specification is not JSON": registry_cli("describe", "Leads", "2"),
        "container train: hyperparameters.json not an object": train(config("hyperparameters.json", "[1]")),
        "container train: inputdataconfig.json not an object": train(config("inputdataconfig.json", '"train"')),
        "container train: hosts []": train(config("resourceconfig.json", '{"current_host": "algo-1", "hosts": []}')),
        "container train: a 40-digit seed": train(config("hyperparameters.json", '{"num_round": "5", "seed": "'
                                                          + "9" * 40 + '"}')),
        "container train: only a label column": train(
            lambda ml: (ml / "input" / "data" / "train" / "t.csv").write_text("1\n0\n" * 50)),
    }


def run_all(work: Path) -> dict[str, int]:
    """Every case, printed one a line; the count of each outcome."""
    counts = dict.fromkeys(OUTCOMES, 0)
    servers: list[Callable[[], None]] = []  # the local endpoints the cases started, stopped however they end
    try:
        endpoint, stop = endpoint_cases(work)
        servers.append(stop)
        scoring, stop = invoke_cases(work)
        servers.append(stop)
        for cases in [s3_cases(work), archive_cases(work), endpoint, scoring, registry_and_container_cases(work)]:
            for title, case in cases.items():
                try:
                    outcome = case()
                except subprocess.TimeoutExpired:
                    outcome = "hung"
                except Exception as exc:  # noqa: BLE001 - a case that blows up is a fault of what it tried
                    outcome = f"traceback ({type(exc).__name__}: {exc})"
                kind = outcome.split(" ")[0]
                counts[kind] += 1
                print(f"  {outcome}: {title}")
    finally:
        for stop in servers:
            stop()
    return counts
