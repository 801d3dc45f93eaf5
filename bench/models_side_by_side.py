"""Benchmark: our three models on the same sample data, side by side (the table in docs/container.md).

For each of the built-in XGBoost algorithm, our Python image (container/, custom mode) and the R image
(container-r/, custom mode), as a user runs them: ``python -m pipelines.run`` into a fresh store on the same
``--sample-rows``, with the pipeline's default hyperparameters (NumRound 300, MaxDepth 5, Eta 0.1, early
stopping), then ``pipelines.registry approve``, ``pipelines.deploy deploy`` to a local endpoint and
``inference.invoke`` of the test split's rows through it. It prints, per model: test AUC and top-decile lift
(Evaluate's evaluation.json), the Train step's time, and the endpoint's scoring throughput (rows a second,
``--max-payload-bytes`` requests, concurrency 2). Nothing is asserted.

    python bench/models_side_by_side.py [--rows 20000] [--score-rows 20000]
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

REPO = Path(__file__).resolve().parents[1]
IMAGES = {"built-in XGBoost 1.7-1": (),
          "our Python image (XGBoost)": ("--training-mode", "custom", "--training-image",
                                         "123456789012.dkr.ecr.us-east-1.amazonaws.com/lead-scoring-xgboost:bench"),
          "the R image (gbm)": ("--training-mode", "custom", "--training-image",
                                "123456789012.dkr.ecr.us-east-1.amazonaws.com/lead-scoring-r:bench")}


def cli(module: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m module args``; its failure stops the benchmark."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPELINE_"))}
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{module} {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done


def one_model(folder: Path, rows: int, score_rows: int, extra: tuple[str, ...]) -> dict[str, float]:
    """Train, evaluate, deploy and score through the endpoint; the figures of one model."""
    store = folder / "store"
    cli("pipelines.run", "--store", str(store), "--sample-rows", str(rows), "--mlflow-tracking-uri", "off",
        "--summary-json", str(folder / "summary.json"), *extra)
    summary = json.loads((folder / "summary.json").read_text())
    report = json.loads(Path(summary["evaluation"]["local_path"]).read_text())
    [record] = [json.loads(p.read_text()) for p in (store / "executions").glob("*/execution.json")]
    train = next(step for step in record["steps"] if step["name"] == "Train")
    train_seconds = _seconds(train["end_time"]) - _seconds(train["start_time"])
    test = sorted((store / "s3").rglob("PrepareData/test/*.csv"))
    lines = [line for path in test for line in path.read_text().splitlines()]
    scoring = folder / "score.csv"
    scoring.write_text("\n".join((lines * (score_rows // len(lines) + 1))[:score_rows]) + "\n")
    cli("pipelines.registry", "approve", "LeadScoringModels", "1", "--store", str(store), "--description", "bench")
    cli("pipelines.deploy", "deploy", "--endpoint-name", "bench", "--store", str(store))
    try:
        started = time.perf_counter()
        cli("inference.invoke", "--endpoint-name", "bench", "--store", str(store), "--input", str(scoring),
            "--output", str(folder / "scores.csv"), "--id-columns", "1", "--concurrency", "2")
        scored_in = time.perf_counter() - started
    finally:
        cli("pipelines.deploy", "undeploy", "bench", "--store", str(store))
    metrics = report["binary_classification_metrics"]
    return {"auc": metrics["auc"]["value"], "lift": report["lead_scoring_metrics"]["top_decile"]["lift"],
            "train_seconds": train_seconds, "rows_per_second": score_rows / scored_in}


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="sample rows each model's pipeline prepares")
    parser.add_argument("--score-rows", type=int, default=20_000, help="rows scored through each endpoint")
    args = parser.parse_args()
    print(f"{args.rows} sample rows; {args.score_rows} rows scored through each local endpoint")
    print(f"{'model':<30} {'test AUC':>9} {'top-decile lift':>16} {'Train':>9} {'endpoint rows/s':>16}")
    for name, extra in IMAGES.items():
        with tempfile.TemporaryDirectory(prefix="side-by-side-") as folder:
            found = one_model(Path(folder), args.rows, args.score_rows, extra)
        print(f"{name:<30} {found['auc']:>9.4f} {found['lift']:>16.2f} {found['train_seconds']:>8.1f}s "
              f"{found['rows_per_second']:>16.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
