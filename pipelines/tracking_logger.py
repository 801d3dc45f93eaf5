"""Executions waiting to become MLflow runs, and the background process that logs them: tracking that costs
a run no wall time.

A tracked run or retry starts this module as a process of its own, in a session of its own (Ctrl-C and the
command's end leave it running): ``python -m pipelines.tracking_logger STORE``. It imports MLflow on another
core while the execution runs, and writes nothing yet. Once the execution has ended, the command queues a
request, ``<store>/mlflow/pending/<time>-<execution id>.json`` (the command's tracking settings; the record and
the definition are read from the store), and closes the logger's input. At the end of its input (the command
closed it, or died) the logger takes ``<store>/mlflow/logger.lock`` and logs every request, oldest first, each
into the execution's run (``pipelines.tracking``), keeping where in the execution record (``mlflow_run``);
a request is removed only once that is done, so a logger killed midway loses nothing: ``settle``, which every
reader of runs calls first, logs what is left. A failure (a server down, a refused URI) is kept in the record,
and the reader that settles it warns. The logger writes what it did to ``<store>/mlflow/logger.log``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

from pipelines import tracking
from pipelines.atomic import TMP_PREFIX
from pipelines.config import PipelineConfig, build_config
from pipelines.errors import ConfigError, PipelineError
from pipelines.local import executions, safe_files
from pipelines.local.executions import ExecutionRecord
from pipelines.local.store import Store, plain_name

MODULE = "pipelines.tracking_logger"
PENDING = Path("mlflow") / "pending"
LOCK = Path("mlflow") / "logger.lock"
LOG = Path("mlflow") / "logger.log"
REQUEST_NAME = re.compile(r"(\d{20})-([A-Za-z0-9_-]{1,128})\.json")  # sorted by name: oldest first
SETTINGS = ("mlflow_tracking_uri", "mlflow_experiment_name", "source_revision")  # a request's, as config names them
MAX_REQUEST_BYTES = 64 * 1024


@dataclass(frozen=True)
class Request:
    """An ended execution waiting to be logged, with the tracking settings of the command that ran it."""

    execution_id: str
    tracking: str  # "store" or a tracking URI
    experiment: str | None
    source_revision: str


def request(store_root: Path, execution_id: str, config: PipelineConfig) -> Path:
    """Queue an ended execution for logging with ``config``'s tracking settings (written whole, never through a
    link); the request's path."""
    name = f"{time.time_ns():020d}-{plain_name(execution_id, 'execution id')}.json"
    path = store_root / PENDING / name
    safe_files.write_text(store_root, path, json.dumps({"execution_id": execution_id,
                                                       **{key: getattr(config, key) for key in SETTINGS}}))
    return path


@dataclass
class Logger:
    """The background logger a tracked command started; it logs what is queued once its input is closed."""

    process: subprocess.Popen[bytes]

    def close(self) -> None:
        """Close its input: it logs the requests queued by then, or ends having written nothing."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    def wait(self) -> None:
        """Wait for it to end (its input closed)."""
        self.process.wait()


def start(store_root: Path) -> Logger:
    """Start the store's background logger now, so that MLflow is imported by the time there is a request."""
    process = subprocess.Popen([sys.executable, "-m", MODULE, str(store_root)], stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                               cwd=store_root if store_root.is_dir() else None)
    return Logger(process)


def pending(store_root: Path) -> dict[str, Request]:
    """The executions waiting to be logged, by id, and how (requests that cannot be read are left out)."""
    found: dict[str, Request] = {}
    for path, execution_id in _queue(store_root)[0]:
        with contextlib.suppress(PipelineError, OSError):
            found[execution_id] = _read(store_root, path, execution_id)
    return found


def settle(store_root: Path, wait_note: Callable[[str], None], warn: Callable[[str], None]) -> None:
    """What every reader of MLflow runs calls first: once no execution waits to be logged, return. A logger at
    work is waited for (``wait_note`` says so, once); what is still queued then (its logger died) is logged here.
    ``warn`` gets one line for each execution it settled whose tracking failed, and for each file of the queue
    that is not a request."""
    found, refused = _queue(store_root)
    if not found:
        for line in refused:
            warn(line)
        return
    ids = sorted({execution_id for _, execution_id in found})
    waiting = (f"waiting for the MLflow logging of execution{'s' if len(ids) > 1 else ''} {', '.join(ids)} to end "
               f"(the logger's log: {store_root / LOG})")
    try:
        with _locked(store_root, lambda: wait_note(waiting)):
            left = sorted({execution_id for _, execution_id in _queue(store_root)[0]})
            if left:  # its logger died, or has not started yet
                wait_note(f"logging execution{'s' if len(left) > 1 else ''} {', '.join(left)} to MLflow here")
            _log_pending(store_root, warn)
    except PipelineError as exc:  # a link where the lock file should be
        warn(f"{exc}; the MLflow runs of {', '.join(ids)} are not logged")
        return
    for execution_id in ids:
        with contextlib.suppress(PipelineError):  # a request for an execution no longer there: said when refused
            failure = tracking.failure_warning(executions.load(store_root, execution_id))
            if failure:
                warn(failure)


def _log_pending(store_root: Path, say: Callable[[str], None],
                logged: Callable[[ExecutionRecord], None] = lambda record: None) -> None:
    """Log every queued request, oldest first, until none is left (those queued meanwhile too); the caller holds
    the lock. ``say`` gets one line for each request refused (then removed) and each file that is not one;
    ``logged`` each execution logged (its record says how)."""
    store, done, said = Store(store_root), set(), set()
    while True:
        found, refused = _queue(store_root)
        for line in refused:
            if line not in said:
                say(line)
                said.add(line)
        fresh = [(path, execution_id) for path, execution_id in found if path.name not in done]
        if not fresh:
            return
        for path, execution_id in fresh:
            done.add(path.name)
            record = _log(store, path, execution_id, say)
            if record is not None:
                logged(record)


def _log(store: Store, path: Path, execution_id: str, say: Callable[[str], None]) -> ExecutionRecord | None:
    """Log one request into its execution's run and keep where in its record; then remove the request. The
    record, or None if the request was refused (one line said why)."""
    try:
        wanted = _read(store.root, path, execution_id)
        record = executions.load(store.root, execution_id)
        definition = executions.load_definition(store.root, execution_id)
    except (PipelineError, OSError) as exc:
        say(f"{path} refused and removed: {exc}")
        record = None
    else:
        said: list[str] = []
        record.mlflow_run = tracking.track(record, definition, store, wanted.tracking, wanted.experiment,
                                           wanted.source_revision, said.append) or {
            # kept for the reader that settles it to warn, beside the run of an earlier try, if any
            **{key: value for key, value in (record.mlflow_run or {}).items() if key in ("run_id", "experiment_id")},
            "experiment": wanted.experiment or tracking.experiment_of(definition, record),
            "tracking_uri": tracking.tracking_uri(wanted.tracking, store), "warning": said[0]}
        record.save(store.root)  # the registry's versions link to it through their execution
    safe_files.remove(store.root, path)
    return record


def _queue(store_root: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    """(path, execution id) of each request, oldest first; and a line for each entry of the queue's folder that
    is not a request (a link, a folder, another name: left there)."""
    folder = store_root / PENDING
    try:
        listed = safe_files.entries(store_root, folder)
    except (PipelineError, OSError) as exc:
        return [], [f"the MLflow logging queue {folder} cannot be read ({exc})"]
    found, refused = [], []
    for name, kind in listed:
        matched = REQUEST_NAME.fullmatch(name)
        if name.startswith(TMP_PREFIX):
            continue  # a request being written
        if matched and kind == "file":
            found.append((folder / name, matched.group(2)))
        else:
            what = "not named TIME-EXECUTION.json" if not matched else "a link or a special file" \
                if kind == "other" else "a folder"
            refused.append(f"{folder}: {name!r} is not an MLflow logging request ({what}); ignored (remove it)")
    return found, refused


def _read(store_root: Path, path: Path, execution_id: str) -> Request:
    """The request in ``path`` (named for ``execution_id``); PipelineError saying what is wrong with it."""
    with safe_files.open_read(store_root, path) as handle:
        data = handle.read(MAX_REQUEST_BYTES + 1)
    if len(data) > MAX_REQUEST_BYTES:
        raise RequestError(f"larger than {MAX_REQUEST_BYTES} bytes")
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise RequestError(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(raw, dict) or set(raw) != {"execution_id", *SETTINGS}:
        raise RequestError(f"not an object of execution_id, {', '.join(SETTINGS)}")
    if raw["execution_id"] != execution_id:
        raise RequestError(f"its execution_id is not the {execution_id} its name says")
    for key in SETTINGS:  # the config's own checks, one at a time: the refusal names the setting, not its value
        try:
            build_config((str(path), {key: raw[key]}))
        except ConfigError:
            raise RequestError(f"its {key} is not one a run accepts") from None
    settings = build_config((str(path), {key: raw[key] for key in SETTINGS}))
    if settings.mlflow_tracking_uri == "off":
        raise RequestError("its mlflow_tracking_uri is off")
    return Request(execution_id, settings.mlflow_tracking_uri, settings.mlflow_experiment_name,
                   settings.source_revision)


class RequestError(PipelineError):
    """A file of the logging queue is not a request this logger wrote."""


@contextlib.contextmanager
def _locked(store_root: Path, busy: Callable[[], None]) -> Iterator[None]:
    """The logging lock held (``busy`` called first if another process holds it)."""
    fd = safe_files.open_lock(store_root, store_root / LOCK)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            busy()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _serve(store_root: Path) -> int:
    """The logger: import MLflow while a thread waits for the end of input and then takes the lock (if anything
    is queued: else nothing is ever written), then log the queue."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="end-of-input") as waiter:
        # started before the import: the lock is taken as the command ends, not once MLflow is in
        lock = waiter.submit(_lock_at_end_of_input, store_root)
        try:
            tracking.warm_up()
            unwarmed = None
        except Exception as exc:  # noqa: BLE001 - each request fails the same way, and its record says so
            unwarmed = f"{type(exc).__name__}: {exc}"
        held = lock.result()
    if held is None:
        return 0
    with held, safe_files.open_append(store_root, store_root / LOG) as log:
        os.dup2(log.fileno(), 1)  # what MLflow prints, and a traceback, go to the log too
        os.dup2(log.fileno(), 2)

        def say(line: str) -> None:
            print(f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} {line}", flush=True)

        if unwarmed:
            say(f"MLflow could not be imported: {unwarmed}")
        _log_pending(store_root, say, lambda record: say(f"execution {record.execution_id}: MLflow run "
                                                         f"{tracking.run_summary(record.mlflow_run or {})}"))
    return 0


def _lock_at_end_of_input(store_root: Path) -> contextlib.ExitStack | None:
    """Once stdin ends: the logging lock, held, if anything is queued; else None (nothing written)."""
    sys.stdin.buffer.read()
    if not _queue(store_root)[0]:
        return None
    held = contextlib.ExitStack()
    held.enter_context(_locked(store_root, lambda: None))
    return held


def main(argv: Sequence[str]) -> int:
    """Entry of the background logger: ``python -m pipelines.tracking_logger STORE_DIR``."""
    if len(argv) != 1:
        print("usage: python -m pipelines.tracking_logger STORE_DIR (a tracked run starts it)", file=sys.stderr)
        return 2
    try:
        return _serve(Path(argv[0]).resolve())
    except Exception:  # noqa: BLE001 - the queue is kept: the next reader of a run logs it
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
