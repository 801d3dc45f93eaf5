"""Benchmark: what running jobs on their images' Python worlds costs.

1. Each of our pipeline's two image environments (SKLearn 1.2-1 and XGBoost 1.7-1: pins, conda base, toolkits,
   pyarrow, awscli), built in its own empty cache, wheels downloaded (a fresh machine); built again with the
   cache's wheels kept but the environment removed (wheels reused across environments); and found built
   (every later job's lookup). Seconds, and each against the first build.
2. Our pipeline's first run (``python -m pipelines.run --sample-rows``, fresh store) with cached image
   environments (``--image-libraries image``, the default) against this interpreter's libraries
   (``--image-libraries engine``, today's engine before image environments), alternated; the ratio
   (goal: at most 1.10). And ``make run``'s cost on a fresh machine: one run that builds both.
Nothing is asserted; the figures go into the README.

    python bench/image_environments.py [--rows 100000] [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def command(cache: Path, *args: str) -> float:
    """Seconds that ``python -m pipelines.run ARGS`` takes with ``cache`` as its environments cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipelines.run", *args, "--environments-cache", str(cache)],
                          cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


OURS = ("sagemaker-scikit-learn:1.2-1", "sagemaker-xgboost:1.7-1")  # what `images prepare` finds in our pipeline


def timed(cache, image) -> float:
    """Seconds that getting ``image``'s environment from ``cache`` takes."""
    started = time.perf_counter()
    cache.prepare(image, lambda line: None)
    return time.perf_counter() - started


def builds() -> None:
    from pipelines.local.environments import Environments
    from pipelines.local.image_libraries import named

    for name in OURS:
        image = named(name)
        with tempfile.TemporaryDirectory(prefix="bench-cache-") as folder:
            cache = Environments(Path(folder))
            first = timed(cache, image)
            built = cache.prepare(image, lambda line: None)
            shutil.rmtree(built.root)  # the cache's uv-wheels stay
            kept = timed(cache, image)
            found = timed(cache, image)
        print(f"{name} ({len(built.manifest['packages'])} packages): first build {first:.1f} s; again with the wheels "
              f"kept {kept:.1f} s ({kept / first:.2f}x the first); found built {found * 1000:.1f} ms "
              f"({found / first:.5f}x)", flush=True)


def pipeline(cache: Path, rows: int, mode: str) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        return command(cache, "--store", str(Path(tmp) / "store"), "--source-revision", "bench",
                       "--sample-rows", str(rows), "--image-libraries", mode)


def pipeline_runs(cache: Path, rows: int, runs: int) -> None:
    from pipelines.local.environments import Environments
    from pipelines.local.image_libraries import named

    for name in OURS:  # built before the timed runs, which compare cached environments with the engine's libraries
        Environments(cache).prepare(named(name), lambda line: None)
    times: dict[str, list[float]] = {"engine": [], "image": []}
    for index in range(runs):
        for mode in (("engine", "image") if index % 2 == 0 else ("image", "engine")):
            times[mode].append(pipeline(cache, rows, mode))
    before, after = statistics.median(times["engine"]), statistics.median(times["image"])
    print(f"pipeline first run, {rows} rows, median of {runs}: --image-libraries engine {before:.1f} s, image "
          f"(cached) {after:.1f} s, ratio {after / before:.3f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as empty:
        first = pipeline(Path(empty), rows, "image")
    print(f"pipeline first run on a fresh machine (both environments built during the run): {first:.1f} s, "
          f"+{first - before:.1f} s over --image-libraries engine", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2, help="pipeline runs per mode (0: skip them)")
    args = parser.parse_args()
    builds()
    if args.runs:
        with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache:
            pipeline_runs(Path(cache), args.rows, args.runs)


if __name__ == "__main__":
    main()
