"""Benchmark: what the job sandbox (bubblewrap) costs.

1. Starting one job host: the job runtime's bubblewrap launch of ``python -S -c pass`` against the same
   program started as a bare subprocess, alternated, N times each; and a job's shared private network
   (two network-isolated hosts). Medians, and the sandbox's cost per job host (goal: under 50 ms).
2. Our pipeline's first run at 100k rows (``python -m pipelines.run --sample-rows``, fresh store) with
   ``--job-sandbox off`` (before) and ``auto`` (after), alternated; the ratio after/before (goal: at
   most 1.05).
Nothing is asserted; the figures go into the README.

    python bench/job_sandbox.py [--starts 40] [--rows 100000] [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipelines.local import job_runtime  # noqa: E402
from pipelines.local.job_runtime.processes import popen  # noqa: E402

PROGRAM = ["python3", "-S", "-c", "pass"]


def start_costs(starts: int) -> None:
    runtime = job_runtime.automatic()
    if not runtime.sandboxed:
        sys.exit(f"no sandbox to measure: {runtime.notice}")
    bare, sandboxed, isolated = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as folder:
        spec = job_runtime.JobSpec(PROGRAM, Path(folder) / "opt-ml", Path(folder))
        for _ in range(starts):
            started = time.perf_counter()
            subprocess.run([sys.executable, *PROGRAM[1:]], check=True)
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert popen(runtime.launch(spec), subprocess.DEVNULL).wait() == 0
            sandboxed.append(time.perf_counter() - started)
        for _ in range(max(3, starts // 4)):
            started = time.perf_counter()
            with runtime.job_network(True, 2) as network:
                hosts = [popen(runtime.launch(job_runtime.JobSpec(
                    PROGRAM, Path(folder) / f"opt-ml-{i}", Path(folder), hostname=f"algo-{i}",
                    hosts=("algo-1", "algo-2"), network=network)), subprocess.DEVNULL) for i in (1, 2)]
                assert [h.wait() for h in hosts] == [0, 0]
            isolated.append(time.perf_counter() - started)
    b, s, i = (statistics.median(x) * 1000 for x in (bare, sandboxed, isolated))
    print(f"start of one job host, median of {starts}: bare {b:.1f} ms, in the sandbox {s:.1f} ms "
          f"(+{s - b:.1f} ms per host, ratio {s / b:.2f})")
    print(f"two network-isolated hosts sharing one private network, median of {len(isolated)}: {i:.1f} ms "
          f"(+{i - b:.1f} ms over one bare start)", flush=True)


def pipeline_runs(rows: int, runs: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    times: dict[str, list[float]] = {"off": [], "auto": []}
    for index in range(runs):
        for mode in (("off", "auto") if index % 2 == 0 else ("auto", "off")):
            with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
                command = [sys.executable, "-m", "pipelines.run", "--store", str(Path(tmp) / "store"),
                           "--source-revision", "bench", "--sample-rows", str(rows), "--job-sandbox", mode]
                started = time.perf_counter()
                done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
                if done.returncode != 0:
                    sys.exit(f"--job-sandbox {mode} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
                times[mode].append(time.perf_counter() - started)
    before, after = statistics.median(times["off"]), statistics.median(times["auto"])
    print(f"pipeline first run, {rows} rows, median of {runs}: --job-sandbox off {before:.1f} s, "
          f"auto {after:.1f} s, ratio {after / before:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=40)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2, help="pipeline runs per mode (0: skip them)")
    args = parser.parse_args()
    start_costs(args.starts)
    if args.runs:
        pipeline_runs(args.rows, args.runs)


if __name__ == "__main__":
    main()
