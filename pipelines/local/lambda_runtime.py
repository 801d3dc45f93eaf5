"""The program a Lambda step's job runs: import the handler from its folder, call it with the event and a
context shaped as Lambda's Python runtime gives it, and write what it returned (JSON) or why it failed.

``python3 -m pipelines.local.lambda_runtime --arn ARN --folder DIR --module MODULE --function NAME --timeout S``,
inside the job runtime: the event is ``/opt/ml/input/event.json``, the result ``/opt/ml/output/result.json``,
a failure ``/opt/ml/output/failure`` (exit 1).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
import uuid
from pathlib import Path

OPT_ML = Path("/opt/ml")


class Context:
    """What a Lambda function gets as ``context``."""

    def __init__(self, arn: str, timeout_seconds: float):
        name = arn.split(":")[6] if arn.count(":") >= 6 else arn
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = "128"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = f"local/[$LATEST]{self.aws_request_id.replace('-', '')}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lambda_runtime")
    for flag in ("--arn", "--folder", "--module", "--function"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args(argv)
    failure = OPT_ML / "output" / "failure"
    try:
        event = json.loads((OPT_ML / "input" / "event.json").read_text())
        sys.path.insert(0, args.folder)
        handler = getattr(importlib.import_module(args.module), args.function)
        result = handler(event, Context(args.arn, args.timeout))
        text = json.dumps(result)
    except Exception as exc:  # noqa: BLE001 - whatever the function raises is its failure, as Lambda reports it
        traceback.print_exc()
        failure.write_text(f"{type(exc).__name__}: {exc}")
        return 1
    (OPT_ML / "output" / "result.json").write_text(text)
    print(f"the function returned {len(text)} bytes of JSON")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
