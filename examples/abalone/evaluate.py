"""The template's kind of evaluation script: it unpacks the model, unpickles it as the 1.0-1 image wrote it,
and writes a regression report."""
import json
import pathlib
import pickle
import tarfile

import numpy as np
import pandas as pd
import xgboost

if __name__ == "__main__":
    with tarfile.open("/opt/ml/processing/model/model.tar.gz") as tar:
        tar.extractall(path=".")
    model = pickle.load(open("xgboost-model", "rb"))
    df = pd.read_csv("/opt/ml/processing/test/test.csv", header=None)
    y_test = df.iloc[:, 0].to_numpy()
    df.drop(df.columns[0], axis=1, inplace=True)
    predictions = model.predict(xgboost.DMatrix(df.values))
    errors = (y_test - predictions) ** 2
    report = {"regression_metrics": {"mse": {"value": float(np.mean(errors)), "standard_deviation": float(np.std(errors))}}}
    pathlib.Path("/opt/ml/processing/evaluation").mkdir(parents=True, exist_ok=True)
    pathlib.Path("/opt/ml/processing/evaluation/evaluation.json").write_text(json.dumps(report))
