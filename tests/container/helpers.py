"""A folder laid out as /opt/ml for the image's programs, data whose scores need calibrating, and a request to a
serve program."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def leads(rows: int, seed: int) -> np.ndarray:
    """Label-first rows: conversion depends on 4 features (increasing in the first), with label noise."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 4))
    logit = 1.5 * features[:, 0] - 1.0 * features[:, 1] + 0.5 * features[:, 2] * features[:, 3] - 1.0
    labels = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(float)
    return np.column_stack([labels, features])


def write_csv(path: Path, rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(f"{int(r[0])}," + ",".join(f"{v:.6f}" for v in r[1:]) for r in rows) + "\n")


def ml_dir(root: Path, hyperparameters: dict[str, str], train_rows: int = 3000, validation_rows: int = 2000,
           channels: tuple[str, ...] = ("train", "validation")) -> Path:
    """``root`` laid out as SageMaker lays out /opt/ml for a training job."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps({c: {"ContentType": "text/csv"} for c in channels}))
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    if "train" in channels:
        write_csv(root / "input" / "data" / "train" / "train.csv", leads(train_rows, 1))
    if "validation" in channels:
        write_csv(root / "input" / "data" / "validation" / "validation.csv", leads(validation_rows, 2))
    return root


def run_container(program: str, ml: Path, *extra: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m pipelines.container PROGRAM --ml-dir ML`` as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run([sys.executable, "-m", "pipelines.container", program, "--ml-dir", str(ml), *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def request(port: int, method: str, path: str, body: bytes | None = None, **headers: str) -> tuple[int, bytes]:
    """One HTTP request to a serve program on loopback (``Content_Type=`` for ``Content-Type``): status and body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def build_without_docker(script: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """``bash SCRIPT`` (a build_and_push.sh) where ``docker`` exists but reaches no engine."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    (fake / "docker").chmod(0o755)
    return subprocess.run(["bash", str(script)], capture_output=True, text=True,
                          env={"PATH": f"{fake}:/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=30)
