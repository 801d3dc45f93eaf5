"""``serve``: the model behind SageMaker's inference contract, under gunicorn.

Listens on ``SAGEMAKER_BIND_TO_PORT`` (8080) on all interfaces (``SERVE_BIND_HOST`` narrows it, as local
runs do to 127.0.0.1), ``SAGEMAKER_MODEL_SERVER_WORKERS`` workers (one per CPU), each loading the model
after it forks. ``GET /ping`` is 200 once the model is loaded; ``GET /execution-parameters``
tells batch transform how to call; ``POST /invocations`` takes headerless ``text/csv`` feature rows and
answers one calibrated probability per line. Refusals as the built-in XGBoost container answers them:
413 over 6 MiB, 415 for another content type or a body that is not numeric CSV, 406 for an Accept other
than text/csv, 400 for rows of the wrong width, 204 for an empty body.
"""

from __future__ import annotations

import io
import json
import os
import sys
from typing import Any, Callable, Iterable

import numpy as np

from container import paths
from container.model import CalibratedModel, check, load, width_problem

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
Headers = list[tuple[str, str]]


class Refusal(Exception):
    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


def parse_rows(body: bytes, features: int) -> np.ndarray:
    """Feature rows of a CSV body; Refusal 415 if it is not numeric CSV, 400 if a row has the wrong width or a
    value that is not finite. The width is checked before parsing (a row of a million columns would take
    seconds to parse), and a short row is refused rather than padded with missing values."""
    import pandas as pd

    lines = [line for line in body.splitlines() if line.strip()]
    for number, line in enumerate(lines, start=1):
        if line.count(b",") + 1 != features:
            raise Refusal("400 Bad Request", width_problem(number, line.count(b",") + 1, features))
    try:
        frame = pd.read_csv(io.BytesIO(body), header=None, dtype=np.float32, skip_blank_lines=True)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise Refusal("415 Unsupported Media Type", f"the body is not headerless numeric CSV: {exc}") from None
    values = frame.to_numpy()
    infinite = np.isinf(values).any(axis=1)
    if infinite.any():
        raise Refusal("400 Bad Request", f"row {int(np.argmax(infinite)) + 1} has a value that is infinite or beyond "
                                         "the float32 range")
    return values


def application(model: CalibratedModel, workers: int) -> Callable[[dict, Callable], Iterable[bytes]]:
    """The WSGI application serving ``model``."""

    def respond(start_response: Callable, status: str, body: bytes, content_type: str = "text/plain") -> list[bytes]:
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    def app(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if path == "/ping" and method == "GET":
            return respond(start_response, "200 OK", b"")
        if path == "/execution-parameters" and method == "GET":
            parameters = {"MaxConcurrentTransforms": workers, "BatchStrategy": "MULTI_RECORD",
                          "MaxPayloadInMB": MAX_PAYLOAD_BYTES // (1024 * 1024)}
            return respond(start_response, "200 OK", json.dumps(parameters).encode(), "application/json")
        if path != "/invocations" or method != "POST":
            return respond(start_response, "404 Not Found", f"no route {method} {path}".encode())
        try:
            return respond(start_response, "200 OK", invocation(environ, model), "text/csv")
        except Refusal as refusal:
            return respond(start_response, refusal.status, str(refusal).encode())

    return app


def invocation(environ: dict[str, Any], model: CalibratedModel) -> bytes:
    """One ``/invocations`` request: its scores, one per line."""
    # a chunked body has no Content-Length: reading one byte past the limit tells whether it is over
    declared = int(environ.get("CONTENT_LENGTH") or MAX_PAYLOAD_BYTES + 1)
    body = environ["wsgi.input"].read(min(declared, MAX_PAYLOAD_BYTES + 1))
    if len(body) > MAX_PAYLOAD_BYTES:
        # read (and drop) a body up to twice the limit, so that the client is still listening for the answer
        left = MAX_PAYLOAD_BYTES
        while left > 0 and (chunk := environ["wsgi.input"].read(min(left, 1 << 20))):
            left -= len(chunk)
        raise Refusal("413 Request Entity Too Large", f"the body is over {MAX_PAYLOAD_BYTES} bytes, the limit")
    content_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if content_type != "text/csv":
        raise Refusal("415 Unsupported Media Type", f"content type {content_type or '(none)'} is not supported; "
                                                    "send text/csv")
    accept = environ.get("HTTP_ACCEPT", "text/csv").split(";")[0].strip().lower()
    if accept not in ("text/csv", "*/*", ""):
        raise Refusal("406 Not Acceptable", f"accept {accept} is not supported; this model answers text/csv")
    if not body.strip():
        raise Refusal("204 No Content", "")
    scores = model.predict(parse_rows(body, model.features))
    return "".join(f"{score:.6f}\n" for score in scores).encode()


def main() -> int:
    """Load the model and serve it with gunicorn until stopped."""
    from gunicorn.app.base import BaseApplication

    try:  # checked here so that a bad model is one line, not a worker that fails to boot
        check(paths.model_dir())
    except (ValueError, OSError) as exc:
        print(f"serve: cannot load the model: {exc}", file=sys.stderr)
        return 1
    workers = int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS") or os.cpu_count() or 1)
    bind = f"{os.environ.get('SERVE_BIND_HOST', '0.0.0.0')}:{os.environ.get('SAGEMAKER_BIND_TO_PORT', '8080')}"

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in {"bind": bind, "workers": workers, "timeout": 60, "graceful_timeout": 10,
                               "accesslog": None, "errorlog": "-", "loglevel": "warning"}.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            # in each worker, after the fork: XGBoost's OpenMP threads do not survive a fork
            return application(load(paths.model_dir()), workers)

    Server().run()
    return 0
