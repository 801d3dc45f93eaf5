"""The R image's programs as a user runs them (``python -m pipelines.container train|serve --image r``), on the
folders and data our Python image's tests use, and the R model's probabilities computed by R itself."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from tests.container.helpers import REPO, run_container

CONTAINER_R = REPO / "container-r"
R_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/lead-scoring-r:1f2e3d4c5b6a"


def train(ml: Path, image: str = "r") -> subprocess.CompletedProcess:
    """The image's ``train`` with ``ml`` as its /opt/ml."""
    return run_container("train", ml, "--image", image)


def csv_rows(rows: np.ndarray) -> bytes:
    return ("\n".join(",".join(f"{v:.6f}" for v in row) for row in rows) + "\n").encode()


def r_predict(model_dir: Path, features: np.ndarray) -> np.ndarray:
    """The probabilities R computes for feature rows with the model in ``model_dir`` (the image's own
    ``predict_model``, called directly, not through ``serve``)."""
    code = (f'source("{CONTAINER_R}/common.R"); source("{CONTAINER_R}/calibration.R"); '
            f'model <- readRDS("{model_dir}/model.rds"); '
            'rows <- as.matrix(utils::read.csv(file("stdin"), header = FALSE)); '
            'cat(sprintf("%.6f\\n", predict_model(model, rows)), sep = "")')
    done = subprocess.run(["Rscript", "-e", code], input=csv_rows(features), capture_output=True, timeout=60,
                          check=True)
    return np.array([float(line) for line in done.stdout.split()])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(ml: Path, image: str) -> Iterator[int]:
    """``python -m pipelines.container serve --image IMAGE`` on a free port, until the block ends: the port, once
    it has said that it listens (which it says once /ping answers)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen([sys.executable, "-m", "pipelines.container", "serve", "--image", image, "--ml-dir",
                                str(ml), "--port", str(port)], cwd=REPO, env=env, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    said: list[str] = []
    up = f"serving at http://127.0.0.1:{port} ("
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and not any(line.startswith(up) for line in said):
            if select.select([process.stdout], [], [], 1)[0]:
                said.append(process.stdout.readline().decode())
                if not said[-1] and process.poll() is not None:
                    break
        if not any(line.startswith(up) for line in said):
            raise AssertionError(f"serve --image {image} did not say it was up: {''.join(said)}")
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
