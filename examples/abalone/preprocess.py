"""The model-build template's kind of preprocessing script: it downloads its input with boto3 itself and
writes label-first splits under hardcoded /opt/ml/processing paths."""
import argparse
import os
import pathlib

import boto3
import numpy as np
import pandas as pd
import requests  # the template's script imports it: the image has it (conda's base environment)

base_dir = "/opt/ml/processing"

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--input-data", type=str, required=True)
    args = parser.parse_args()
    print(f"requests {requests.__version__}")
    bucket = args.input_data.split("/")[2]
    key = "/".join(args.input_data.split("/")[3:])
    pathlib.Path(f"{base_dir}/data").mkdir(parents=True, exist_ok=True)
    fn = f"{base_dir}/data/abalone-dataset.csv"
    boto3.resource("s3").Bucket(bucket).download_file(key, fn)
    df = pd.read_csv(fn, header=None, names=["sex", "length", "diameter", "height", "whole_weight",
                                             "shucked_weight", "viscera_weight", "shell_weight", "rings"])
    os.unlink(fn)
    y = df.pop("rings")
    X = pd.get_dummies(df, columns=["sex"], dtype=float)
    data = np.concatenate((y.to_numpy().reshape(-1, 1), X.to_numpy()), axis=1)
    np.random.default_rng(7).shuffle(data)
    train, validation, test = np.split(data, [int(0.7 * len(data)), int(0.85 * len(data))])
    for name, part in (("train", train), ("validation", validation), ("test", test)):
        pathlib.Path(f"{base_dir}/{name}").mkdir(parents=True, exist_ok=True)
        pd.DataFrame(part).to_csv(f"{base_dir}/{name}/{name}.csv", header=False, index=False)
