"""MLflow logging of a training job of our image, to the run the pipeline names in the job's environment
(``processing/mlflow_run.py``, copied into the image)."""

from __future__ import annotations

import os
from typing import Any, Mapping

from processing.mlflow_run import job_run


def log_training(hyperparameters: Mapping[str, Any], history: Mapping[str, Mapping[str, list[float]]],
                 metrics: Mapping[str, float], environ: Mapping[str, str] = os.environ) -> str | None:
    """Log the hyperparameters, each round's train and validation AUC (as metric history, one step a round)
    and the final validation metrics; the run's id, or None when nothing was logged."""
    run_id = None
    with job_run("Train", environ, "the model is written as usual", environ.get("TRAINING_JOB_NAME")) as mlflow:
        if mlflow is None:
            return None
        mlflow.log_params({k: v for k, v in hyperparameters.items() if v is not None})
        for data, series in history.items():
            for metric, values in series.items():
                for round_number, value in enumerate(values):
                    mlflow.log_metric(f"{data}-{metric}", float(value), step=round_number)
        mlflow.log_metrics({name.replace(":", "_"): float(value) for name, value in metrics.items()})
        mlflow.set_tag("training_job", environ.get("TRAINING_JOB_NAME", ""))
        run_id = mlflow.active_run().info.run_id
    return run_id
