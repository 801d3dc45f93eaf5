"""A job's MLflow run, as the pipeline names it in the job's environment: ``MLFLOW_TRACKING_URI`` (on
SageMaker, the managed MLflow server's ARN, which the sagemaker-mlflow plugin resolves),
``MLFLOW_EXPERIMENT_NAME`` and ``MLFLOW_RUN_NAME``. Used by Evaluate (shipped beside evaluate.py, which
runs as a lone script) and by our image's training program.

Where the image has no mlflow, ``MLFLOW_PIP_INSTALL`` (the pipeline sets it for Evaluate, whose stock
XGBoost image has neither mlflow nor the plugin) names the packages installed first, with pip, bounded
in time. Without a tracking URI nothing is logged. Whatever goes wrong (nothing to install from, a server
that refuses or does not answer) is one warning line on stderr; the job's own outputs are never affected.
"""

from __future__ import annotations

import logging
import os
import subprocess
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
        mlflow = _mlflow(environ.get("MLFLOW_PIP_INSTALL", "").split())

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
    except subprocess.CalledProcessError as exc:
        said = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        reason = "mlflow is not installed in this job's image, and pip could not install it (%s)" % (
            said[-1] if said else "exit %d" % exc.returncode)
    except subprocess.TimeoutExpired:
        reason = "mlflow is not installed in this job's image, and pip did not install it within 300s"
    except Exception as exc:  # noqa: BLE001 - whatever MLflow or its server says, the job's outputs stand
        reason = "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        if uri.startswith("arn:"):
            reason += " (an ARN tracking URI needs the sagemaker-mlflow plugin in the image)"
    print("warning: MLflow logging to %s skipped: %s; %s" % (uri, reason, unaffected), file=sys.stderr)
    if not yielded:  # the run could not be opened: the caller's block runs without it
        yield None


def _mlflow(packages: list) -> Any:
    """The mlflow module; installed first from ``packages`` where it is missing and some are named."""
    try:
        import mlflow
    except ImportError:
        if not packages:
            raise
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--timeout", "20", "--retries", "1", *packages], check=True, timeout=300,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        import mlflow
    return mlflow
