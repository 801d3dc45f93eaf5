"""``python -m pipelines.container train|serve [--image xgboost|r] --ml-dir DIR``: an image's programs (our
Python image, ``container/``, or the R image, ``container-r/``) against a folder laid out as ``/opt/ml``,
without Docker: the local test that ``docker run -v $(pwd)/ml:/opt/ml IMAGE train`` (or ``serve``) would be,
before the image is pushed. The program runs in the job runtime, as the engine's jobs do: DIR is its /opt/ml,
and it sees nothing else of this machine but its interpreter (R and its packages, for the R image)."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from inference.image_programs import ImageProgram, own_image_program, r_image_program
from pipelines.cli.parsing import CommandParser, run_parsed
from pipelines.errors import ConfigError
from pipelines.local import job_runtime
from pipelines.local.environments import Environments


# --image: whose programs stand in for the image
IMAGES: dict[str, Callable[[], ImageProgram]] = {"xgboost": own_image_program, "r": r_image_program}


def parser() -> argparse.ArgumentParser:
    p = CommandParser(
        prog="python -m pipelines.container",
        description="Run an image's train or serve program with DIR as its /opt/ml.",
        epilog="Lay DIR out as SageMaker does: DIR/input/config/{hyperparameters,inputdataconfig,resourceconfig}.json "
               "and DIR/input/data/{train,validation}/*.csv for train; DIR/model (what train wrote) for serve.")
    sub = p.add_subparsers(dest="program", required=True)
    train = sub.add_parser("train", help="train from DIR/input, write DIR/model (DIR/output/failure on error)")
    serve = sub.add_parser("serve", help="serve DIR/model on 127.0.0.1:PORT until stopped (Ctrl-C)")
    for program in (train, serve):
        program.add_argument("--image", choices=sorted(IMAGES), default="xgboost",
                             help="whose programs: xgboost, our Python image (container/, repository "
                                  "lead-scoring-xgboost; the default), or r, the R image (container-r/, repository "
                                  "lead-scoring-r; needs R: apt-get install r-base-core r-cran-gbm r-cran-plumber "
                                  "r-cran-jsonlite)")
        program.add_argument("--ml-dir", type=Path, required=True, help="the folder standing in for /opt/ml")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (SAGEMAKER_BIND_TO_PORT; default 8080)")
    serve.add_argument("--workers", type=int, default=1,
                       help="gunicorn workers (SAGEMAKER_MODEL_SERVER_WORKERS; the R image serves in one process)")
    return p



def job(args: argparse.Namespace, image: ImageProgram, work_dir: Path) -> job_runtime.JobSpec:
    """The image's program to run, with DIR as its /opt/ml; ConfigError for a folder that cannot be /opt/ml."""
    ml_dir = args.ml_dir.resolve()
    if args.program == "train" and not (ml_dir / "input" / "config").is_dir():
        raise ConfigError(f"--ml-dir {args.ml_dir}: no input/config folder; lay it out as /opt/ml (see --help)")
    if args.program == "serve" and not (ml_dir / "model").is_dir():
        raise ConfigError(f"--ml-dir {args.ml_dir}: no model folder; run train first")
    environment = {"SAGEMAKER_BASE_DIR": job_runtime.CONTAINER_ROOT}
    if args.program == "serve":
        if not 1 <= args.port <= 65535 or args.workers < 1:
            raise ConfigError("--port must be 1-65535 and --workers at least 1")
        environment.update({"SAGEMAKER_BIND_TO_PORT": str(args.port), "SERVE_BIND_HOST": "127.0.0.1",
                            "SAGEMAKER_MODEL_SERVER_WORKERS": str(args.workers)})
    python_env = None
    if image.requirements is not None:  # our Python image's pinned libraries; the R image runs this machine's R
        python_env = Environments().with_requirements(image.requirements,
                                                      lambda line: print(line, file=sys.stderr)).root
    return job_runtime.JobSpec([*image.command, args.program], ml_dir, work_dir, environment,
                               workdir=image.workdir, image_files=image.files, python_env=python_env)


def announce_when_up(process: Any, port: int, timeout: float = 120.0) -> None:
    """Say where the server listens once it answers /ping, so that a script started in the background can wait
    for this line (or poll /ping) before it sends requests."""
    import http.client

    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                print(f"serving at http://127.0.0.1:{port} (GET /ping, POST /invocations with text/csv rows; Ctrl-C "
                      "stops it)", flush=True)
                return
        except OSError:
            pass
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    """Run the program the arguments name; its exit code is ours."""
    return run_parsed(parser(), argv, run)


def run(args: argparse.Namespace) -> int:
    """Start the program in the job runtime, with the folder as its /opt/ml, and wait for it."""
    # `kill PID` stops the program as Ctrl-C does: the job's processes are stopped with it, none outlives it
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    image = IMAGES[args.image]()  # first: what this machine lacks for it (R) is the one line said
    runtime = job_runtime.automatic()
    if runtime.notice:
        print(f"note: {runtime.notice}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="container-") as work_dir:
        process = job_runtime.start(runtime, job(args, image, Path(work_dir)))
        try:
            if args.program == "serve":
                announce_when_up(process, args.port)
            return process.wait()  # the program's exit code is ours
        finally:
            job_runtime.kill_group(process.pid)

