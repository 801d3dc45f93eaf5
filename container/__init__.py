"""Our own training and serving image: XGBoost with probability calibration and monotone constraints.

The programs follow SageMaker's container contracts. ``python -m container train`` reads
``/opt/ml/input/config/*.json`` and ``/opt/ml/input/data/<channel>``, writes ``/opt/ml/model`` and, on
error, ``/opt/ml/output/failure``; ``python -m container serve`` answers ``/ping``,
``/execution-parameters`` and ``/invocations`` on port 8080 (``SAGEMAKER_BIND_TO_PORT``) under gunicorn.
``SAGEMAKER_BASE_DIR`` moves ``/opt/ml`` elsewhere (as the SageMaker training toolkit's variable does),
which is how these programs run on a machine without Docker. The package needs only numpy, pandas,
xgboost, scikit-learn and gunicorn; it never imports the rest of this repository.
"""
