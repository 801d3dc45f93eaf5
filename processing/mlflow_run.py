"""A job's MLflow run, as the pipeline names it in the job's environment: ``MLFLOW_TRACKING_URI`` (on
SageMaker, the managed MLflow server's ARN, which the sagemaker-mlflow plugin resolves),
``MLFLOW_EXPERIMENT_NAME`` and ``MLFLOW_RUN_NAME``. Used by Evaluate (shipped beside evaluate.py, which
runs as a lone script) and by our image's training program.

Without a tracking URI nothing is logged. Whatever goes wrong (no mlflow in the image, a server that
refuses or does not answer) is one warning line on stderr; the job's own outputs are never affected.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Optional


@contextmanager
def job_run(step: str, environ: Mapping[str, str] = os.environ, unaffected: str = "the job's outputs are written as "
            "usual", run_name: Optional[str] = None) -> Iterator[Optional[Any]]:
    """The ``mlflow`` module inside the run the environment names (tagged with the step and the pipeline
    execution), or None when there is nothing to log to or logging failed (said in one warning)."""
    uri = environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        yield None
        return
    yielded = False
    try:
        import mlflow

        logging.getLogger("mlflow").setLevel(logging.ERROR)  # its own warnings would repeat ours
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(environ.get("MLFLOW_EXPERIMENT_NAME") or "Default")
        with mlflow.start_run(run_name=environ.get("MLFLOW_RUN_NAME") or run_name) as run:
            mlflow.set_tags({"step": step, "pipeline_execution_id": environ.get("PIPELINE_EXECUTION_ID", "")})
            yielded = True
            yield mlflow
        print("logged to MLflow run %s (experiment %s)" % (run.info.run_id, environ.get("MLFLOW_EXPERIMENT_NAME")
                                                            or "Default"))
        return
    except ImportError as exc:
        reason = "mlflow is not installed in this job's image (%s)" % exc
    except Exception as exc:  # noqa: BLE001 - whatever MLflow or its server says, the job's outputs stand
        reason = "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        if uri.startswith("arn:"):
            reason += " (an ARN tracking URI needs the sagemaker-mlflow plugin in the image)"
    print("warning: MLflow logging to %s skipped: %s; %s" % (uri, reason, unaffected), file=sys.stderr)
    if not yielded:  # the run could not be opened: the caller's block runs without it
        yield None
