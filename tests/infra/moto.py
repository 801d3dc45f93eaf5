"""moto_server on loopback for the secure environment's tests, and the stack parameters they stand it up with."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from typing import Iterator

ACCOUNT = "123456789012"  # moto's account
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/KeyAdmin"
OPERATOR = f"arn:aws:iam::{ACCOUNT}:role/PipelineCI"
APPROVER = f"arn:aws:iam::{ACCOUNT}:role/ModelApprover"
REQUIRED = [f"AdminPrincipalArn={ADMIN}", f"OperatorPrincipalArns={OPERATOR}", f"ApproverPrincipalArns={APPROVER}"]
REDSHIFT = ["RedshiftClusterId=leads-dw", "RedshiftDatabase=marketing", "RedshiftDbUser=ml_reader"]

# what a command run against the server gets: fake credentials, the region, no file or instance credentials
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "AWS_EC2_METADATA_DISABLED": "true", "SAGEMAKER_VALIDATE_ROLE": "false"}


def parameters(*assignments: str) -> list[str]:
    """``--parameter`` flags for ``infra deploy``: the required principals, then ``assignments``."""
    return [arg for assignment in (*REQUIRED, *assignments) for arg in ("--parameter", assignment)]


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port, for one test module; its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
