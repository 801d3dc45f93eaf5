"""A model served by its own container's ``serve`` program, started on a loopback port.

This is how a bring-your-own image is hosted without Docker: the model archive is unpacked into the
folder that is the program's ``/opt/ml/model``, the image's program is started by the job runtime as
``COMMAND serve`` with ``SAGEMAKER_BIND_TO_PORT`` on 127.0.0.1 (this machine's network), the host waits
for ``GET /ping``, reads ``GET /execution-parameters`` as batch transform does, and sends each request to
``POST /invocations``.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from inference.image_programs import ImageProgram
from inference.xgboost_csv import InvocationError
from pipelines.local import job_runtime
from pipelines.local.environments import Environments
from processing.archives import extract

STARTUP_SECONDS = 120


class ContainerStartError(Exception):
    """The serve program did not come up; the message is why (its last log line)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ContainerPredictor:
    """One model, served by its image's ``serve`` program, in the job runtime, until ``close()``."""

    def __init__(self, program: ImageProgram, model_archive: Path, runtime: job_runtime.Runtime,
                 environments: Environments, startup_seconds: float = STARTUP_SECONDS, log_file: Path | None = None):
        self.base = Path(tempfile.mkdtemp(prefix="serve-"))
        self.process: subprocess.Popen | None = None
        try:
            opt_ml = self.base / "opt-ml"
            extract(model_archive, opt_ml / "model")
            self.port = _free_port()
            environment = {"SAGEMAKER_BASE_DIR": job_runtime.CONTAINER_ROOT, "SAGEMAKER_BIND_TO_PORT": str(self.port),
                           "SERVE_BIND_HOST": "127.0.0.1", "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
            self.log = log_file or self.base / "serve.log"  # the serve program's output, appended
            python_env = None
            if program.requirements is not None:
                with open(self.log, "a", encoding="utf-8") as building:
                    python_env = environments.with_requirements(
                        program.requirements, lambda line: building.write(line + "\n")).root
            spec = job_runtime.JobSpec([*program.command, "serve"], opt_ml, self.base, environment,
                                       workdir=program.workdir, image_files=program.files, python_env=python_env)
            with open(self.log, "ab") as sink:
                self.process = job_runtime.start(runtime, spec, sink)
            self._wait_until_up(startup_seconds)
            self.execution_parameters = self._execution_parameters()
        except BaseException:
            self.close()
            raise

    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                 timeout: float = 60) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _last_log_line(self) -> str:
        lines = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else "(no output)"

    def _wait_until_up(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ContainerStartError(f"the serve program exited with code {self.process.returncode}: "
                                          f"{self._last_log_line()}")
            try:
                if self._request("GET", "/ping", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise ContainerStartError(f"the serve program did not answer GET /ping within {seconds:g} s: "
                                  f"{self._last_log_line()}")

    def _execution_parameters(self) -> dict[str, Any]:
        status, body = self._request("GET", "/execution-parameters")
        if status != 200:
            return {}  # optional for a container; batch transform then uses its own defaults
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            return {}

    def invoke(self, body: bytes, content_type: str = "text/csv", accept: str = "text/csv") -> bytes:
        """POST /invocations; InvocationError with the container's status when it refuses."""
        status, answer = self._request("POST", "/invocations", body, {"Content-Type": content_type, "Accept": accept})
        if status == 204:
            return b""
        if status != 200:
            raise InvocationError(status, answer.decode(errors="replace").strip() or f"status {status}")
        return answer

    def close(self) -> None:
        """Stop the serve program (its whole process group) and remove its files."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except (ProcessLookupError, PermissionError):
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)
