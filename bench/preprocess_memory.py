"""Benchmark: processing/preprocess.py on a large input: wall time and peak memory (max RSS), against
pandas' C parser reading the same files (the floor for parsing them in Python) and against the
script as it was at an earlier git revision (``--before``; default: the line-by-line version that
issue 14 measured, before block checks).

Builds an input of about --size-gb gigabytes (synthetic label-first CSV, repeated to size), runs the
script and the baseline each as its own process, and prints time, throughput and each child's own peak
resident memory (measured inside the child, so not the parent's high-water mark a fork inherits), with
the ratios. Nothing is asserted.

    python bench/preprocess_memory.py [--size-gb 1.0] [--before REV | --before '']
"""

from __future__ import annotations

import argparse
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


LINE_BY_LINE_REVISION = "dc5d5c1"  # the last line-by-line PrepareData

# runs a program in this child and reports the child's own peak RSS (kilobytes) on stderr's last line: VmHWM,
# which starts afresh at exec (getrusage's ru_maxrss keeps the forking parent's high-water mark on Linux)
MEASURED = ("import runpy, sys, atexit\n"
            "def peak():\n"
            "    kb = next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:'))\n"
            "    print('PEAK_KB', kb, file=sys.stderr)\n"
            "atexit.register(peak)\n"
            "sys.argv = sys.argv[1:]\n"
            "runpy.run_path(sys.argv[0], run_name='__main__')\n")
BASELINE = ("import glob, sys\nimport pandas as pd\n"
            "rows = sum(len(chunk) for path in sorted(glob.glob(sys.argv[1] + '/*.csv'))\n"
            "           for chunk in pd.read_csv(path, header=None, chunksize=500_000, engine='c'))\n"
            "print(rows)\n")


def measured(script: Path, *argv: str) -> tuple[float, int]:
    """(seconds, peak RSS bytes of the child itself) of running ``script argv``."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", MEASURED, str(script), *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{script.name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    peak = int(result.stderr.strip().splitlines()[-1].split()[1]) * 1024
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--before", default=LINE_BY_LINE_REVISION,
                        help="git revision whose processing/preprocess.py is also timed ('' to skip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-preprocess-") as tmp:
        work = Path(tmp)
        size = build_input(work, int(args.size_gb * 1024 ** 3))
        seconds, peak = measured(REPO / "processing" / "preprocess.py", "--input-dir", str(work / "raw"),
                                 "--output-dir", str(work / "out"), "--train-shards", "4", "--work-dir", str(work))
        baseline = work / "baseline.py"
        baseline.write_text(BASELINE)
        base_seconds, base_peak = measured(baseline, str(work / "raw"))
        before = None
        if args.before:
            earlier = work / "preprocess_before.py"
            earlier.write_bytes(subprocess.run(["git", "show", f"{args.before}:processing/preprocess.py"], cwd=REPO,
                                               capture_output=True, check=True).stdout)
            before = measured(earlier, "--input-dir", str(work / "raw"), "--output-dir", str(work / "out-before"),
                              "--train-shards", "4", "--work-dir", str(work))
    mib = size / 1024 ** 2
    print(f"input {size / 1024 ** 3:.2f} GiB")
    print(f"preprocess.py        {seconds:7.1f}s {mib / seconds:7.1f} MiB/s  peak RSS {peak / 1024 ** 2:5.0f} MiB")
    print(f"pandas C read only   {base_seconds:7.1f}s {mib / base_seconds:7.1f} MiB/s  peak RSS {base_peak / 1024 ** 2:5.0f} MiB")
    print(f"ratio (preprocess / pandas read): time {seconds / base_seconds:.2f}x, peak memory {peak / base_peak:.2f}x")
    if before:
        print(f"preprocess.py at {args.before} {before[0]:7.1f}s {mib / before[0]:7.1f} MiB/s  peak RSS "
              f"{before[1] / 1024 ** 2:5.0f} MiB: now {before[0] / seconds:.2f}x faster")


if __name__ == "__main__":
    main()
