"""MLflow logging of a training job of our image: on SageMaker, to the managed MLflow run the pipeline names in
the job's environment (``MLFLOW_TRACKING_URI`` = the tracking server's ARN, ``MLFLOW_EXPERIMENT_NAME``,
``MLFLOW_RUN_NAME``), through the sagemaker-mlflow plugin. Without a tracking URI nothing is logged; any
failure is one warning on stderr, and the model is written as usual."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Mapping


def log_training(hyperparameters: Mapping[str, Any], history: Mapping[str, Mapping[str, list[float]]],
                 metrics: Mapping[str, float], environ: Mapping[str, str] = os.environ) -> str | None:
    """Log the hyperparameters, each round's train and validation AUC (as metric history, one step a round)
    and the final validation metrics; the run's id, or None when nothing was logged."""
    uri = environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return None
    try:
        import mlflow

        logging.getLogger("mlflow").setLevel(logging.ERROR)  # its own warnings would repeat ours
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(environ.get("MLFLOW_EXPERIMENT_NAME") or "Default")
        with mlflow.start_run(run_name=environ.get("MLFLOW_RUN_NAME") or environ.get("TRAINING_JOB_NAME")) as run:
            mlflow.log_params({k: v for k, v in hyperparameters.items() if v is not None})
            for data, series in history.items():
                for metric, values in series.items():
                    for round_number, value in enumerate(values):
                        mlflow.log_metric(f"{data}-{metric}", float(value), step=round_number)
            mlflow.log_metrics({name.replace(":", "_"): float(value) for name, value in metrics.items()})
            mlflow.set_tags({"step": "Train", "training_job": environ.get("TRAINING_JOB_NAME", ""),
                             "pipeline_execution_id": environ.get("PIPELINE_EXECUTION_ID", "")})
        print(f"logged to MLflow run {run.info.run_id}")
        return run.info.run_id
    except ImportError as exc:
        reason = f"mlflow is not installed in this image ({exc})"
    except Exception as exc:  # noqa: BLE001 - whatever MLflow or its server says, the model is not affected
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if uri.startswith("arn:"):
            reason += " (an ARN tracking URI needs the sagemaker-mlflow plugin in the image)"
    print(f"warning: MLflow logging to {uri} skipped: {reason}; the model is written as usual", file=sys.stderr)
    return None
