"""Benchmark: processing/preprocess.py on a large input: wall time and peak memory (max RSS).

Builds an input of about --size-gb gigabytes (synthetic label-first CSV, repeated to size),
runs the script as its own process, and prints the time, the throughput and the script's peak
resident memory as a fraction of the input size. Nothing is asserted.

    python bench/preprocess_memory.py [--size-gb 1.0]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build_input(directory: Path, size_bytes: int) -> int:
    """Write label-first CSV files totalling at least ``size_bytes``; returns the byte count."""
    from pipelines import sample_data

    [seed] = sample_data.write(directory / "seed", 200_000, files=1)
    block = seed.read_bytes()
    written, index = 0, 0
    while written < size_bytes:
        path = directory / "raw" / f"leads-{index:03d}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            for _ in range(5):
                out.write(block)
        written += 5 * len(block)
        index += 1
    shutil.rmtree(directory / "seed")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-preprocess-") as tmp:
        work = Path(tmp)
        size = build_input(work, int(args.size_gb * 1024 ** 3))
        command = [sys.executable, str(REPO / "processing" / "preprocess.py"), "--input-dir", str(work / "raw"),
                   "--output-dir", str(work / "out"), "--train-shards", "4", "--work-dir", str(work)]
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(f"preprocess failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # kilobytes on Linux
    print(f"input {size / 1024 ** 3:.2f} GiB; preprocess {seconds:.1f}s ({size / 1024 ** 2 / seconds:.1f} MiB/s); "
          f"peak memory {peak / 1024 ** 2:.0f} MiB = {peak / size:.3f} of the input size")


if __name__ == "__main__":
    main()
