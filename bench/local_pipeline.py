"""Benchmark: the local engine running our pipeline against a plain-Python baseline doing the same work.

For each size (default 100k and 1M rows), each as a fresh process:
  1. ``python -m pipelines.run`` on the local engine with an empty input, into a new store: generate
     the sample data, build the definition, PrepareData, Train, Evaluate, gate, register, create
     model, batch transform of the test split;
  2. the baseline: one Python process that generates the same sample data, reads the CSV, splits it
     70/15/15 stratified, and trains XGBoost as the built-in algorithm does (the pipeline's default
     hyperparameters, the train and validation sets evaluated every round, early stopping), then
     scores the test split;
  3. the same pipeline run again, unchanged (sample data and definition reused; PrepareData, Train
     and Evaluate cache hits), through the same command and on the engine alone (``--definition``
     of the saved JSON);
  4. the tracking cost on its own: the cached re-run with tracking on (the default: an MLflow run in the
     store) and with ``--mlflow-tracking-uri off``, alternated ``--repeat`` times each (default 3), the
     difference of the commands' median wall times; and, apart, how long the MLflow logging goes on in the
     background once a tracked command has ended (the median; each next command starts once it is done).
It prints the times and the ratios pipeline/baseline and cached/first. Nothing is asserted.

    python bench/local_pipeline.py [--rows 100000 1000000] [--repeat 3]
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

BASELINE = """
import glob, sys
import numpy as np, pandas as pd, xgboost as xgb
sys.path.insert(0, sys.argv[2])
from pipelines import sample_data
from pathlib import Path
sample_data.write(Path(sys.argv[1]), int(sys.argv[3]))
frame = pd.concat([pd.read_csv(p, header=None) for p in sorted(glob.glob(sys.argv[1] + '/*.csv'))], ignore_index=True)
rng = np.random.RandomState(42)
parts = {'train': [], 'validation': [], 'test': []}
for label, group in frame.groupby(0):
    index = rng.permutation(group.index.to_numpy())
    n_val, n_test = int(len(index) * 0.15), int(len(index) * 0.15)
    parts['validation'].append(index[:n_val]); parts['test'].append(index[n_val:n_val + n_test])
    parts['train'].append(index[n_val + n_test:])
data = {k: frame.loc[np.concatenate(v)] for k, v in parts.items()}
matrix = lambda f: xgb.DMatrix(f.iloc[:, 1:].to_numpy(np.float32), label=f.iloc[:, 0].to_numpy(), missing=np.nan)
dtrain, dval, dtest = matrix(data['train']), matrix(data['validation']), matrix(data['test'])
params = {'objective': 'binary:logistic', 'eval_metric': 'auc', 'max_depth': 5, 'eta': 0.1, 'subsample': 0.8}
booster = xgb.train(params, dtrain, 300, evals=[(dtrain, 'train'), (dval, 'validation')], early_stopping_rounds=20,
                    verbose_eval=False)
scores = booster.predict(dtest, iteration_range=(0, booster.best_iteration + 1))
print(len(scores), 'test rows scored')
"""


def timed(command: list[str], env: dict[str, str]) -> float:
    """Seconds a command takes; its failure stops the benchmark."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.perf_counter() - started


def logging_after(store: Path) -> float:
    """Seconds the background MLflow logging of a command that just ended goes on; its failure stops the
    benchmark."""
    from pipelines.tracking_logger import settle

    started = time.perf_counter()
    settle(store, lambda line: None, lambda line: sys.exit(f"MLflow logging: {line}"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="tracked and untracked cached re-runs, each")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    from pipelines.config import LOCAL_BUCKET, LOCAL_ROLE_ARN

    print(f"{'rows':>9} {'pipeline':>9} {'baseline':>9} {'ratio':>6} {'cached':>8} {'cached/first':>12} "
          f"{'engine-only cached':>18} {'/first':>6} {'tracking cost':>14} {'logging after':>14}")
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            store = Path(tmp) / "store"
            run = [sys.executable, "-m", "pipelines.run", "--store", str(store), "--source-revision", "bench",
                   "--sample-rows", str(rows)]
            pipeline = timed(run, env)
            logging_after(store)
            raw = Path(tmp) / "baseline-input"
            baseline = timed([sys.executable, "-c", BASELINE, str(raw), str(REPO), str(rows)], env)
            cached = timed(run, env)
            logging_after(store)
            # the same definition, saved under the pipeline's name (the cache is per pipeline name)
            saved = Path(tmp) / "LeadScoringPipeline.json"
            timed(run[:3] + ["--definition-only", str(saved), "--bucket", LOCAL_BUCKET, "--role-arn", LOCAL_ROLE_ARN,
                             "--source-revision", "bench"], env)
            engine_only = timed(run + ["--definition", str(saved)], env)
            logging_after(store)
            on, off, after = [], [], []
            for _ in range(args.repeat):
                on.append(timed(run, env))
                after.append(logging_after(store))
                off.append(timed(run + ["--mlflow-tracking-uri", "off"], env))
        tracking = statistics.median(on) - statistics.median(off)
        print(f"{rows:>9} {pipeline:>8.1f}s {baseline:>8.1f}s {pipeline / baseline:>6.2f} {cached:>7.1f}s "
              f"{cached / pipeline:>12.2f} {engine_only:>17.1f}s {engine_only / pipeline:>6.2f} {tracking:>+13.2f}s "
              f"{statistics.median(after):>13.2f}s",
              flush=True)


if __name__ == "__main__":
    main()
