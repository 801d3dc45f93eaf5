"""Benchmark: scoring a large CSV through a local endpoint, the seed's loop against invoke-endpoint.

It trains a model on sample leads, registers and deploys it to a local endpoint (gunicorn, one
worker process per core), writes N unlabeled leads (an id, then 20 features), then scores them:
  1. the seed's approach: ``pandas.read_csv(chunksize=3000)``, one blocking InvokeEndpoint per chunk;
  2. ``python -m inference.invoke`` (whole rows packed up to 6 MB, 8 requests in flight).
It prints rows/s, requests and the average payload fill (bytes sent / 6,291,456) of each, and the
ratio of the rows/s. Nothing is asserted.

    python bench/invoke.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference.hosting import MAX_PAYLOAD_BYTES  # noqa: E402
from inference.scoring import runtime_client  # noqa: E402
from pipelines import sample_data  # noqa: E402
from pipelines.local.endpoints import LocalEndpoints  # noqa: E402
from pipelines.local.registry import Registry  # noqa: E402
from pipelines.local.store import Store  # noqa: E402

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
CHUNK_ROWS = 3000


def deploy(work: Path) -> tuple[Store, str]:
    """A model trained on sample leads, Approved and served at the local endpoint 'bench'; returns its URL."""
    import xgboost as xgb

    data = sample_data.generate(20000)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 5}, xgb.DMatrix(data[:, 1:], label=data[:, 0]), 100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        booster.save_model(str(work / "xgboost-model"))
    with tarfile.open(work / "model.tar.gz", "w:gz") as tar:
        tar.add(work / "xgboost-model", arcname="xgboost-model")
    store = Store(work / "store")
    store.put_file(work / "model.tar.gz", "s3://bench/model/model.tar.gz")
    package = Registry(store.root / "registry.sqlite").register(
        "Bench", "Approved", {"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://bench/model/model.tar.gz"}]})
    record = LocalEndpoints(store).deploy("bench", package, instance_count=os.cpu_count() or 2)
    return store, record["Url"]


def seed_loop(url: str, leads: Path) -> tuple[float, int, float, float]:
    """(seconds, requests, average fill, fill without the final request) of one sequential request per
    3,000-row pandas chunk."""
    import boto3
    import pandas as pd

    client = runtime_client(boto3.Session(region_name="us-east-1"), url, 1)
    started, requests, sent, last = time.monotonic(), 0, 0, 0
    for chunk in pd.read_csv(leads, header=None, chunksize=CHUNK_ROWS):
        body = chunk.iloc[:, 1:].to_csv(header=False, index=False).encode()
        client.invoke_endpoint(EndpointName="bench", Body=body, ContentType="text/csv")["Body"].read()
        requests, sent, last = requests + 1, sent + len(body), len(body)
    return (time.monotonic() - started, requests, sent / (requests * MAX_PAYLOAD_BYTES),
            (sent - last) / max((requests - 1) * MAX_PAYLOAD_BYTES, 1))


def invoke_endpoint(store: Store, leads: Path, output: Path) -> tuple[float, int, float, float]:
    """(seconds, requests, average fill, fill without the final request) of invoke-endpoint, from its final line."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "inference.invoke", "--endpoint-name", "bench", "--input", str(leads),
                             "--output", str(output), "--id-columns", "1", "--store", str(store.root)],
                            cwd=REPO, capture_output=True, text=True, check=True)
    elapsed = time.monotonic() - started
    found = re.search(r"in (\d+) requests.*average payload fill ([\d.]+)% \(([\d.]+)%", result.stdout)
    assert found, result.stdout + result.stderr
    return elapsed, int(found.group(1)), float(found.group(2)) / 100, float(found.group(3)) / 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-invoke-") as tmp:
        work = Path(tmp)
        store, url = deploy(work)
        try:
            [leads] = sample_data.write_unlabeled(work / "leads", args.rows, files=1)
            size = leads.stat().st_size
            print(f"{args.rows:,} leads, {size / 2**20:.1f} MiB, endpoint {url}")
            seed = seed_loop(url, leads)
            ours = invoke_endpoint(store, leads, work / "scores.csv")
        finally:
            LocalEndpoints(store).delete("bench")
    print(f"{'approach':<34}{'seconds':>9}{'rows/s':>10}{'requests':>10}{'payload fill':>14}{'(without final)':>17}")
    for name, (seconds, requests, fill, full) in (("seed loop (3,000-row chunks)", seed), ("invoke-endpoint", ours)):
        print(f"{name:<34}{seconds:>9.1f}{args.rows / seconds:>10,.0f}{requests:>10,}{fill:>14.1%}{full:>17.1%}")
    print(f"invoke-endpoint / seed loop, rows/s: {seed[0] / ours[0]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
