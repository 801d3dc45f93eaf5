"""Benchmark: built-in XGBoost training jobs sharing this machine's cores, with and without the engine's settings.

The engine gives every job program ``OMP_WAIT_POLICY=PASSIVE`` (OpenMP threads sleep instead of spinning
while they wait). This script trains the same model (sample leads, one run of the local algorithm worker
per case) and prints wall times:
  1. one host, alone: OpenMP's default wait policy against PASSIVE;
  2. one host with one competing CPU-bound process: default against PASSIVE;
  3. two hosts (distributed through the collective tracker): default against PASSIVE;
  4. two hosts, both PASSIVE: all cores' threads per host against cores / hosts threads each (a cap
     the engine does not apply: this case measures why).
Ratios compare each pair measured in this one run. Nothing is asserted.

    python bench/job_threads.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipelines import sample_data  # noqa: E402
from pipelines.local.xgboost_algorithm import WORKER_MODULE  # noqa: E402

HYPERPARAMETERS = {"num_round": "120", "max_depth": "6", "eta": "0.1", "objective": "binary:logistic",
                   "eval_metric": "auc", "tree_method": "hist"}
SPIN = "while True: pass"


def job(work: Path, name: str, lines: list[str], hosts: int) -> Path:
    """A job folder: the train rows split over ``hosts`` hosts, a shared validation channel."""
    root = work / name
    cut = int(len(lines) * 0.85)
    for index in range(hosts):
        host = root / "channels" / f"algo-{index + 1}"
        (host / "train").mkdir(parents=True)
        (host / "validation").mkdir(parents=True)
        (host / "train" / "part.csv").write_text("".join(lines[index:cut:hosts]))
        (host / "validation" / "v.csv").write_text("".join(lines[cut:]))
    spec = {"hyperparameters": HYPERPARAMETERS, "image_version": "1.7-1", "content_kind": "csv",
            "channels_root": str(root / "channels"),
            "hosts_with_data": [f"algo-{i + 1}" for i in range(hosts)], "model_dir": str(root / "model"),
            "metrics_file": str(root / "metrics.json")}
    (root / "job.json").write_text(json.dumps(spec))
    return root


def train(job_dir: Path, env: dict[str, str]) -> tuple[float, float]:
    """(seconds, validation AUC) of one training job run as the engine runs it."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", WORKER_MODULE, "--job-dir", str(job_dir)], cwd=REPO, env=env, check=True,
                   capture_output=True)
    seconds = time.perf_counter() - started
    return seconds, json.loads((job_dir / "metrics.json").read_text())["validation:auc"]


def with_competitor(job_dir: Path, env: dict[str, str]) -> tuple[float, float]:
    competitor = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        return train(job_dir, env)
    finally:
        competitor.kill()
        competitor.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    data = sample_data.generate(args.rows)
    lines = [",".join("" if np.isnan(v) else f"{v:g}" for v in row) + "\n" for row in data]
    base = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    default, passive = dict(base), {**base, "OMP_WAIT_POLICY": "PASSIVE"}
    cores = os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-threads-") as tmp:
        work = Path(tmp)
        cases = [
            ("one host, alone", lambda n, e: train(job(work, n, lines, 1), e), default, passive),
            ("one host + a competing process", lambda n, e: with_competitor(job(work, n, lines, 1), e), default,
             passive),
            ("two hosts", lambda n, e: train(job(work, n, lines, 2), e), default, passive),
            ("two hosts, PASSIVE: all cores each / cores/2 each", lambda n, e: train(job(work, n, lines, 2), e),
             passive, {**passive, "OMP_NUM_THREADS": str(max(1, cores // 2))}),
        ]
        for index, (title, run, before, after) in enumerate(cases):
            old_seconds, old_auc = run(f"case{index}-before", before)
            new_seconds, new_auc = run(f"case{index}-after", after)
            rows.append((title, old_seconds, new_seconds, old_auc, new_auc))
    print(f"{args.rows:,} rows, {cores} cores")
    print(f"{'case':<52}{'before':>9}{'after':>9}{'after/before':>14}{'AUC before':>12}{'AUC after':>11}")
    for title, old_seconds, new_seconds, old_auc, new_auc in rows:
        print(f"{title:<52}{old_seconds:>8.1f}s{new_seconds:>8.1f}s{new_seconds / old_seconds:>14.2f}"
              f"{old_auc:>12.4f}{new_auc:>11.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
