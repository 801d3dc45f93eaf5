"""Scoring a CSV of any size through an endpoint (the ``invoke-endpoint`` command, also ``python -m inference.invoke``):
score a CSV of any size through an endpoint.

    invoke-endpoint --endpoint-name NAME --input leads.csv[.gz]|FOLDER|s3://bucket/prefix/ --output scores.csv
                    [--id-columns 1] [--max-payload-bytes 6291456] [--concurrency 8] [--resume]
                    [--target local|sagemaker]

Rows are streamed, packed whole into requests up to the payload limit, sent with at most
``--concurrency`` requests in flight through boto3's ``sagemaker-runtime`` client (pointed at the
local endpoint's URL for ``--target local``), and written in input order: the id columns, then the
score. Throttling, 5xx and connection errors are retried with jittered exponential backoff; a model
error (4xx) is not, and names the first row of the failing request. Output goes to ``OUTPUT.partial``
with its progress in ``OUTPUT.progress.json`` and is renamed to OUTPUT when every row is scored;
an interrupted or failed run continues with ``--resume`` without re-scoring finished requests.

Exit codes: 0 every row scored; 1 rows left unscored (the reason is printed); 2 a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import re
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Sequence

from inference.hosting import MAX_PAYLOAD_BYTES
from inference.checkpoint import Checkpoint
from inference.payloads import PayloadError, Request, Source, local_sources, pack, rows
from pipelines.errors import ConfigError, PipelineError
from pipelines.s3uri import split_uri
from pipelines.aws import aws_session
from pipelines.config import PipelineConfig

RETRYABLE_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException", "ServiceUnavailable",
                   "InternalFailure", "InternalServerError", "ModelNotReadyException"}
BACKOFF_BASE_SECONDS = 0.2
BACKOFF_CAP_SECONDS = 20.0


class ScoringError(PipelineError):
    """Rows were left unscored; the message says why and how to continue."""


class ScoringInterrupted(ScoringError):
    """Ctrl-C or SIGTERM stopped the run; the message says how many rows were saved."""

    exit_code = 130


class _Terminated(KeyboardInterrupt):
    signal_name = "SIGTERM"


@contextlib.contextmanager
def terminated_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run as Ctrl-C does: no further row is written, and what was saved is said."""
    def stop(signum: int, frame: object) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def refuse_overwriting_inputs(sources: Sequence[Source], written: Sequence[Path]) -> None:
    """ConfigError if --output (or its partial or progress file) is one of the input files."""
    inputs = {os.path.realpath(s.path) for s in sources if s.path is not None}
    for path in written:
        if os.path.realpath(path) in inputs:
            raise ConfigError(f"--output {written[0]}: {path} is an input file; write the scores elsewhere")


@dataclass
class Totals:
    """What a run did, for the progress display and the final line."""

    rows: int = 0
    requests: int = 0
    retries: int = 0
    bytes_sent: int = 0
    last_request_bytes: int = 0  # the final request is the only one not filled up to the limit
    started: float = field(default_factory=time.monotonic)

    def rate(self) -> float:
        return self.rows / max(time.monotonic() - self.started, 1e-9)


def check_arguments(args: argparse.Namespace) -> None:
    if not 1 <= args.max_payload_bytes <= MAX_PAYLOAD_BYTES:
        raise ConfigError(f"--max-payload-bytes must be between 1 and {MAX_PAYLOAD_BYTES}; got {args.max_payload_bytes}")
    if not 1 <= args.concurrency <= 64:
        raise ConfigError(f"--concurrency must be between 1 and 64; got {args.concurrency}")
    if args.id_columns < 0 or args.max_retries < 0:
        raise ConfigError("--id-columns and --max-retries must not be negative")


def score_file(args: argparse.Namespace, config: PipelineConfig) -> int:
    """The whole run the ``invoke-endpoint`` flags ask for: sources, client, ordered scoring with checkpoints, the
    final rename."""
    check_arguments(args)
    if args.target == "sagemaker":
        session = aws_session(config)
        sources = s3_sources(session.client("s3"), args.input) if args.input.startswith("s3://") \
            else _local(args.input)
        client = runtime_client(session, None, args.concurrency)
    else:
        from pipelines.local.endpoints import LocalEndpoints
        from pipelines.local.store import Store

        store = Store(args.store.resolve())
        sources = store_sources(store, args.input) if args.input.startswith("s3://") else _local(args.input)
        endpoint = LocalEndpoints(store).describe(args.endpoint_name)
        if endpoint["Health"] != "Healthy":
            raise ScoringError(f"local endpoint {args.endpoint_name} is {endpoint['Health']}: deploy it again "
                               f"(deploy-model deploy --endpoint-name {args.endpoint_name} ...)")
        import boto3

        client = runtime_client(boto3.Session(region_name=config.region), endpoint["Url"], args.concurrency)
    checkpoint = Checkpoint(args.output, {"input": [s.name for s in sources], "id_columns": args.id_columns,
                                          "endpoint": args.endpoint_name}, args.id_columns)
    refuse_overwriting_inputs(sources, checkpoint.files())
    invoke = invoker(client, args.endpoint_name)
    totals = Totals()
    try:
        with terminated_as_interrupt():
            remaining = checkpoint.start(args.resume, rows(sources))
            with Display(checkpoint.rows) as display:
                scorer = Scorer(invoke, args.concurrency, args.max_retries, totals, display.update)
                scorer.run(pack(remaining, args.id_columns, args.max_payload_bytes), checkpoint.write)
    except KeyboardInterrupt as exc:
        raise ScoringInterrupted(f"{getattr(exc, 'signal_name', 'SIGINT')}: {checkpoint.rows} rows scored and saved "
                                 f"in {checkpoint.partial}; rerun with --resume to continue from row "
                                 f"{checkpoint.rows + 1}") from None
    finally:
        checkpoint.close()
    if scorer.failure is not None:
        hint = ""
        if args.id_columns == 0 and re.search(r"not numeric|expected \d+ features, got", scorer.failure):
            hint = " (if the rows start with lead ids, --id-columns N keeps them back from the model)"
        if checkpoint.rows == 0:
            raise ScoringError(f"{scorer.failure}{hint}; no row was scored: fix the cause and run again")
        raise ScoringError(f"{scorer.failure}{hint}; {checkpoint.rows} rows scored, the rest left unscored: fix the "
                           f"cause, then rerun with --resume to continue from row {checkpoint.rows + 1}")
    checkpoint.finish()
    elapsed = time.monotonic() - totals.started
    fill = totals.bytes_sent / max(totals.requests * args.max_payload_bytes, 1)
    full = (totals.bytes_sent - totals.last_request_bytes) / max((totals.requests - 1) * args.max_payload_bytes, 1)
    print(f"scored {checkpoint.rows} rows ({totals.rows} this run) in {totals.requests} requests, "
          f"{totals.retries} retries, {elapsed:.1f}s ({totals.rate():.0f} rows/s), average payload fill {fill:.1%} "
          f"({full:.1%} without the final request); wrote {args.output}")
    return 0


def _local(path: str) -> list[Source]:
    try:
        return local_sources(Path(path))
    except PayloadError as exc:
        raise ConfigError(str(exc)) from None


def store_sources(store: Any, uri: str) -> list[Source]:
    """The local store's objects under an s3:// prefix (an object or a prefix)."""
    objects = store.objects(uri)
    if not objects:
        raise ConfigError(f"{uri}: no objects in the local store {store.root}")
    return [Source(f"s3://{split_uri(uri)[0]}/{key}", path.stat().st_size, lambda path=path: open(path, "rb"), path)
            for key, path in objects]


def s3_sources(s3: Any, uri: str) -> list[Source]:
    """The objects under an s3:// prefix, each read as a stream."""
    from pipelines.aws import aws_call

    bucket, prefix = split_uri(uri)
    with aws_call("ListObjectsV2"):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        found = [o for page in pages for o in page.get("Contents", []) if not o["Key"].endswith("/")
                 and not o["Key"].rsplit("/", 1)[-1].startswith(".")]
    if not found:
        raise ConfigError(f"{uri}: no objects")

    def opener(key: str) -> Callable[[], IO[bytes]]:
        def open_object() -> IO[bytes]:
            with aws_call("GetObject"):
                return io.BufferedReader(_Stream(s3.get_object(Bucket=bucket, Key=key)["Body"]), 1 << 20)
        return open_object

    return [Source(f"s3://{bucket}/{o['Key']}", o["Size"], opener(o["Key"])) for o in sorted(found, key=lambda o: o["Key"])]


class _Stream(io.RawIOBase):
    """A botocore StreamingBody as a raw binary stream."""

    def __init__(self, body: Any):
        self.body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.body.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self.body.close()
        super().close()


def runtime_client(session: Any, endpoint_url: str | None, concurrency: int) -> Any:
    """A sagemaker-runtime client: retries are ours (so they can be counted and jittered); a local endpoint is
    not signed, so it needs no credentials."""
    from botocore import UNSIGNED
    from botocore.config import Config

    settings: dict[str, Any] = {"retries": {"total_max_attempts": 1}, "max_pool_connections": concurrency,
                                "read_timeout": 70, "connect_timeout": 10}
    if endpoint_url:
        settings["signature_version"] = UNSIGNED
    return session.client("sagemaker-runtime", endpoint_url=endpoint_url, config=Config(**settings))


class RequestFailed(Exception):
    """One request failed; ``retryable`` says whether another attempt may succeed."""

    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


def invoker(client: Any, endpoint_name: str) -> Callable[[bytes], bytes]:
    """InvokeEndpoint with a CSV body; RequestFailed classifying botocore's errors."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    def invoke(body: bytes) -> bytes:
        try:
            response = client.invoke_endpoint(EndpointName=endpoint_name, Body=body, ContentType="text/csv",
                                              Accept="text/csv")
            return response["Body"].read()
        except ClientError as exc:
            error, status = exc.response.get("Error", {}), exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            code = error.get("Code", str(status))
            original = exc.response.get("OriginalStatusCode")
            retryable = code in RETRYABLE_CODES or status == 429 or (status >= 500) or \
                (code == "ModelError" and isinstance(original, int) and original >= 500)
            raise RequestFailed(f"{code}: {error.get('Message', exc)}", retryable) from None
        except (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ConnectTimeoutError) as exc:
            raise RequestFailed(f"connection error: {exc}", True) from None

    return invoke


class Scorer:
    """Sends requests with a bounded number in flight and hands results on in input order."""

    def __init__(self, invoke: Callable[[bytes], bytes], concurrency: int, max_retries: int, totals: Totals,
                 on_progress: Callable[[Totals], None], sleep: Callable[[float], None] = time.sleep):
        self.invoke = invoke
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.totals = totals
        self.on_progress = on_progress
        self.sleep = sleep
        self.failure: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def run(self, requests: Any, write: Callable[[Request, list[bytes]], None]) -> None:
        """Score every request (stopping at the first that fails for good); ``write`` gets them in order.

        A request leaves the window only once it is written, so an interruption (Ctrl-C, SIGTERM) at any
        point writes nothing more: what was written is a prefix of the input, and in-flight requests are
        dropped, never written after a gap."""
        window: deque[tuple[Request, Future[list[bytes]]]] = deque()
        input_error = None
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="invoke")
        try:
            try:
                for request in requests:
                    if self._stop.is_set():
                        break
                    window.append((request, pool.submit(self._score, request)))
                    while window and (len(window) >= 2 * self.concurrency or window[0][1].done()):
                        self._hand_on(window[0], write)
                        window.popleft()
            except PayloadError as exc:  # the rows before it are still scored and written
                input_error = str(exc)
            while window:
                self._hand_on(window[0], write)
                window.popleft()
        except BaseException:
            self._stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        self.failure = self.failure or input_error

    def _hand_on(self, item: tuple[Request, Future[list[bytes]]], write: Callable[[Request, list[bytes]], None]) -> None:
        request, future = item
        try:
            scores = future.result()
        except RequestFailed as exc:
            self._stop.set()
            self.failure = self.failure or f"the request starting at {request.first_row} failed: {exc}"
            return
        if self.failure is None:  # after a failure nothing more is written, so the output stays a prefix
            write(request, scores)
            with self._lock:
                self.totals.rows += request.rows
                self.totals.last_request_bytes = len(request.body)
            self.on_progress(self.totals)

    def _score(self, request: Request) -> list[bytes]:
        attempt = 0
        while True:
            if self._stop.is_set():
                raise RequestFailed("not sent: an earlier request failed", False)
            try:
                answer = self.invoke(request.body)
                scores = answer.splitlines()
                if len(scores) != request.rows:
                    raise RequestFailed(f"{request.rows} rows sent, {len(scores)} scores returned", False)
                with self._lock:
                    self.totals.requests += 1
                    self.totals.bytes_sent += len(request.body)
                return scores
            except RequestFailed as exc:
                if not exc.retryable or attempt >= self.max_retries:
                    raise
                attempt += 1
                with self._lock:
                    self.totals.retries += 1
                self.sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** attempt)))


class Display:
    """A live status on a terminal (rows, requests, rows/s, retries); nothing otherwise."""

    def __init__(self, resumed_rows: int):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.resumed_rows = resumed_rows
        self.progress: Any = None

    def __enter__(self) -> "Display":
        if self.console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("scoring"), BarColumn(), TextColumn("{task.fields[status]}"),
                                     TimeElapsedColumn(), console=self.console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task("scoring", total=None, status="starting")
        if self.resumed_rows:
            print(f"resuming after {self.resumed_rows} rows already scored", file=sys.stderr)
        return self

    def update(self, totals: Totals) -> None:
        if self.progress is not None:
            self.progress.update(self.task, status=f"{totals.rows:,} rows, {totals.requests} requests, "
                                                    f"{totals.rate():,.0f} rows/s, {totals.retries} retries")

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
