"""Local endpoints: a registered model version served on loopback by gunicorn, one server per endpoint.

Each endpoint lives in ``<store>/endpoints/<name>/``: ``endpoint.json`` (what it serves, where, its
server's pid), the model file it serves, ``server.log``. The server is the hosting layer's WSGI app
(``inference.server``) under gunicorn, started in the background in its own session, so it outlives
the command that deployed it. Updating an endpoint to another version writes the new record and
sends the server SIGHUP: gunicorn starts workers on the new model and lets the old ones finish
their requests, so no request fails during the swap.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from inference.gunicorn_worker import THREADS
from inference.hosting import HostingError, predictor_for
from pipelines.errors import ConfigError, EndpointError, EndpointNotFoundError
from pipelines.local import safe_files
from pipelines.local.job_runtime.processes import stat_fields
from pipelines.local.store import Store

ENDPOINT_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")  # SageMaker's rule for endpoint names
LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")
SWAP_CONFIRMATIONS = 12  # consecutive answers from the new version before the old model file is removed


def check_endpoint_name(name: str) -> str:
    """``name`` if SageMaker accepts it as an endpoint name; ConfigError otherwise."""
    if not isinstance(name, str) or not ENDPOINT_NAME.fullmatch(name):
        raise ConfigError(f"endpoint name {name!r} must match {ENDPOINT_NAME.pattern} (letters, digits and "
                            "hyphens, 63 at most), as SageMaker requires")
    return name


class LocalEndpoints:
    """Create, update, list and delete endpoints served from one local store."""

    def __init__(self, store: Store, start_timeout: float = 60.0, log: Callable[[str], None] = lambda line: None,
                 image_programs: Mapping[str, str] | None = None):
        self.store = store
        self.start_timeout = start_timeout
        self.log = log
        self.image_programs = dict(image_programs or {})  # image URI -> the local command standing in for it

    def deploy(self, name: str, package: dict[str, Any], instance_count: int = 1) -> dict[str, Any]:
        """Serve ``package`` (a DescribeModelPackage-shaped version) at endpoint ``name``; returns its record.

        A new endpoint starts a server; an existing one with a live server swaps to the new version.
        """
        return self.serve(name, package_served(package), instance_count)

    def serve(self, name: str, served: Served, instance_count: int = 1,
              extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Serve ``served`` at endpoint ``name`` (``extra`` fields are kept in its record); returns the record.

        A new endpoint (or one whose server is not running) starts a server; a live one swaps without downtime.
        """
        folder = self.store.endpoint_dir(check_endpoint_name(name))
        source = self.store.path(served.model_data_url)
        if not safe_files.is_file(self.store.root, source):
            raise EndpointError(f"{served.source}: its model {served.model_data_url} is not in the local store "
                                f"{self.store.root}")
        previous = self._read(folder)
        model_file = Path("models") / f"v{served.version}-{time.time_ns()}.tar.gz"
        with safe_files.replacing(self.store.root, folder / model_file) as handle, \
                safe_files.open_read(self.store.root, source) as model:
            shutil.copyfileobj(model, handle)
        programs = {k: v for k, v in self.image_programs.items() if k == served.image}
        try:  # load it here once, so a bad model is reported now rather than in the server's log
            predictor_for(served.image, folder / model_file, programs).close()
        except HostingError as exc:
            safe_files.remove(self.store.root, folder / model_file)
            raise EndpointError(f"{served.source}: {exc}") from None
        now = datetime.now(timezone.utc).isoformat()
        record = {
            "EndpointName": name, "EndpointArn": endpoint_arn(name), **served.labels, **(extra or {}),
            "Image": served.image, "ImagePrograms": programs, "ModelFile": model_file.as_posix(),
            "ServedVersion": f"{served.version}", "InstanceCount": instance_count,
            "CreationTime": (previous or {}).get("CreationTime", now), "LastModifiedTime": now,
        }
        live = previous is not None and _alive(previous)
        if live and previous.get("InstanceCount") == instance_count:
            record.update(Pid=previous["Pid"], PidStarted=previous["PidStarted"], Port=previous["Port"],
                          Url=previous["Url"], EndpointStatus="Updating")
            self._write(folder, record)
            self._swap(record)
            self._remove_old_models(folder, keep=model_file)
        else:
            if live:  # a new instance count needs a new server; it keeps the endpoint's port
                self._stop(folder, previous)
            self._write(folder, {**record, "EndpointStatus": "Creating"})
            record.update(self._start(folder, (previous or {}).get("Port", 0)))
        record["EndpointStatus"] = "InService"
        self._write(folder, record)
        return record

    def begin(self, name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Record a new endpoint as ``Creating`` (serving nothing yet) with ``fields``; returns the record."""
        now = datetime.now(timezone.utc).isoformat()
        record = {"EndpointName": name, "EndpointArn": endpoint_arn(name), **fields, "EndpointStatus": "Creating",
                  "CreationTime": now, "LastModifiedTime": now}
        self._write(self.store.endpoint_dir(check_endpoint_name(name)), record)
        return record

    def annotate(self, name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Change fields of an endpoint's record (its status, why it failed); returns the record."""
        folder, record = self._existing(name)
        record = {**record, **fields, "LastModifiedTime": datetime.now(timezone.utc).isoformat()}
        self._write(folder, record)
        return record

    def delete(self, name: str) -> dict[str, Any]:
        """Stop the endpoint's server and remove the endpoint; EndpointError if there is no such endpoint."""
        folder, record = self._existing(name)
        self._stop(folder, record)
        safe_files.remove_tree(self.store.root, folder)
        return record

    def describe(self, name: str) -> dict[str, Any]:
        """One endpoint's record with its current health; EndpointError if there is no such endpoint."""
        folder, record = self._existing(name)
        return {**record, "Health": self._health(folder, record)}

    def list(self) -> list[dict[str, Any]]:
        """Every local endpoint, by name, with its health."""
        root = self.store.root / "endpoints"
        names = [name for name, kind in safe_files.entries(self.store.root, root) if kind == "folder"]
        return [self.describe(name) for name in names
                if safe_files.kind(self.store.root, root / name / "endpoint.json") is not None]

    # -- the server ------------------------------------------------------------------------------

    def _start(self, folder: Path, port: int = 0) -> dict[str, Any]:
        """Start the server on ``port`` (0: a free one) and wait until it answers /ping."""
        log = folder / "server.log"
        record = self._read(folder) or {}
        command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{int(port)}",
                   "--workers", str(max(1, int(record.get("InstanceCount", 1)))),
                   "--worker-class", "inference.gunicorn_worker.ReadTimeoutThreadWorker",
                   "--threads", str(THREADS), "--timeout", "60", "--graceful-timeout", "20",
                   "--error-logfile", "-", "--capture-output", "--no-control-socket",
                   f"inference.server:create_app({str(folder.resolve())!r})"]
        with safe_files.open_append(self.store.root, log) as sink:
            offset = sink.tell()
            process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, cwd=str(Path(__file__).resolve().parents[2]))
        deadline = time.monotonic() + self.start_timeout
        bound = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EndpointError(f"the endpoint's server exited with code {process.returncode} while starting: "
                                    f"{self._last_line(log, offset)} (log: {log})")
            if bound is None:
                found = LISTENING.search(safe_files.read_text(self.store.root, log)[offset:])
                bound = int(found.group(1)) if found else None
            if bound is not None and _ping(bound)[0] == 200:
                url = f"http://127.0.0.1:{bound}"
                self.log(f"server pid {process.pid} listening at {url}")
                return {"Pid": process.pid, "PidStarted": _started(process.pid), "Port": bound, "Url": url}
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGKILL)
        raise EndpointError(f"the endpoint's server did not answer /ping within {self.start_timeout:.0f}s (log: {log})")

    def _swap(self, record: dict[str, Any]) -> None:
        """SIGHUP: gunicorn reloads its workers on the new record; wait until only the new version answers."""
        os.kill(record["Pid"], signal.SIGHUP)
        wanted, confirmed = record["ServedVersion"], 0
        deadline = time.monotonic() + self.start_timeout
        while confirmed < SWAP_CONFIRMATIONS:
            if time.monotonic() > deadline:
                raise EndpointError(f"endpoint {record['EndpointName']} did not switch to version {wanted} within "
                                    f"{self.start_timeout:.0f}s (log: {self.store.endpoint_dir(record['EndpointName'])}"
                                    "/server.log)")
            status, version = _ping(record["Port"])
            confirmed = confirmed + 1 if status == 200 and version == wanted else 0
            time.sleep(0.05)
        self.log(f"server pid {record['Pid']} now serves version {wanted}")

    def _stop(self, folder: Path, record: dict[str, Any]) -> None:
        pid = record.get("Pid")
        if not _alive(record):
            return
        os.kill(pid, signal.SIGTERM)  # gunicorn: graceful shutdown, in-flight requests finish
        deadline = time.monotonic() + 30
        while _alive(record) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(record):
            os.killpg(pid, signal.SIGKILL)
        self.log(f"stopped server pid {pid}")

    def _health(self, folder: Path, record: dict[str, Any]) -> str:
        if not _alive(record):
            return "Stopped"
        status, _ = _ping(record.get("Port", 0))
        return "Healthy" if status == 200 else f"Unhealthy (/ping: {status or 'no answer'})"

    # -- the record ------------------------------------------------------------------------------

    def _existing(self, name: str) -> tuple[Path, dict[str, Any]]:
        folder = self.store.endpoint_dir(check_endpoint_name(name))
        record = self._read(folder)
        if record is None:
            raise EndpointNotFoundError(f"Could not find endpoint \"{name}\" in the local store {self.store.root}")
        return folder, record

    def _read(self, folder: Path) -> dict[str, Any] | None:
        path = folder / "endpoint.json"
        try:
            record = json.loads(safe_files.read_bytes(self.store.root, path))
        except FileNotFoundError:
            return None
        except (ValueError, RecursionError) as exc:
            raise EndpointError(f"{path} is unreadable ({exc}); undeploy cannot stop its server: remove the folder "
                                "after stopping the gunicorn process serving it") from None
        if not isinstance(record, dict):
            raise EndpointError(f"{path} is unreadable (a JSON {type(record).__name__}, not an object); remove the "
                                "folder after stopping the gunicorn process serving it")
        return record

    def _write(self, folder: Path, record: dict[str, Any]) -> None:
        safe_files.write_text(self.store.root, folder / "endpoint.json", json.dumps(record, indent=2))

    def _remove_old_models(self, folder: Path, keep: Path) -> None:
        for name, _ in safe_files.entries(self.store.root, folder / "models"):
            if name != keep.name:
                safe_files.remove(self.store.root, folder / "models" / name)

    def _last_line(self, log: Path, offset: int) -> str:
        lines = [line for line in safe_files.read_text(self.store.root, log)[offset:].splitlines() if line.strip()]
        return lines[-1] if lines else "(no output)"


@dataclass(frozen=True)
class Served:
    """What an endpoint serves: a container's image and model data, the fields its record names them by, the
    version its server answers with (a swap waits for it), and how errors name it."""

    image: str
    model_data_url: str
    labels: Mapping[str, Any]
    version: str
    source: str


def package_served(package: dict[str, Any]) -> Served:
    """A registered version (DescribeModelPackage's shape) as what an endpoint serves."""
    container = package["InferenceSpecification"]["Containers"][0]
    labels = {key: package[key] for key in ("ModelPackageArn", "ModelPackageGroupName", "ModelPackageVersion")}
    return Served(container["Image"], container["ModelDataUrl"], labels, str(package["ModelPackageVersion"]),
                  package["ModelPackageArn"])


def served_label(record: dict[str, Any]) -> str:
    """What an endpoint serves, in a few words: a registered version, or a model (created through the local
    SageMaker API)."""
    if record.get("ModelPackageGroupName"):
        return f"{record['ModelPackageGroupName']} v{record['ModelPackageVersion']}"
    return f"model {record.get('ModelName', '?')}"


def endpoint_arn(name: str) -> str:
    """The ARN of local endpoint ``name``."""
    return f"arn:aws:sagemaker:local:000000000000:endpoint/{name.lower()}"


def _ping(port: int) -> tuple[int | None, str | None]:
    """(status, served model version) of GET /ping, or (None, None) when nothing answers."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/ping")
            response = connection.getresponse()
            response.read()
            return response.status, response.getheader("X-Local-Model-Version")
        finally:
            connection.close()
    except OSError:
        return None, None


def _started(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot): with the pid, it names one process, never a recycled pid."""
    fields = stat_fields(pid)
    return fields[19] if len(fields) > 19 else None


def _alive(record: dict[str, Any]) -> bool:
    """True if the server the record names (by the pid and start time it recorded) is running, not a zombie."""
    pid = record.get("Pid")
    if type(pid) is not int or pid <= 0:
        return False
    fields = stat_fields(pid)
    return len(fields) > 19 and fields[0] != "Z" and fields[19] == record.get("PidStarted")

