"""Benchmark: how long validating a definition takes, against parsing the same definition JSON.

It builds our lead-scoring definition (every security option set), then times in this one process:
the first validation (which loads botocore's SageMaker service model), a warm validation (the mean
of 20), and ``json.loads`` of the definition as the baseline. Nothing is asserted.

    python bench/validate.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")

from pipelines.config import build_config  # noqa: E402
from pipelines.lead_scoring import build  # noqa: E402
from pipelines.validation import SecurityRules, validate  # noqa: E402

SETTINGS = {"role_arn": "arn:aws:iam::123456789012:role/R", "bucket": "lead-bucket",
            "kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "subnets": "subnet-0123456789abcdef0", "security_group_ids": "sg-0123456789abcdef0"}


def main() -> int:
    config = build_config(("bench", SETTINGS))
    built = build(config)
    rules = SecurityRules.for_config(config)
    started = time.perf_counter()
    problems = validate(built.definition_dict, rules, built.definition)
    first = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(20):
        validate(built.definition_dict, rules, built.definition)
    warm = (time.perf_counter() - started) / 20
    started = time.perf_counter()
    for _ in range(20):
        json.loads(built.definition)
    parse = (time.perf_counter() - started) / 20
    print(f"definition: {len(built.definition):,} characters, {len(problems)} problems")
    print(f"first validation (loads botocore's model): {first * 1000:.0f} ms")
    print(f"warm validation: {warm * 1000:.2f} ms = {warm / parse:.0f}x json.loads of the same definition "
          f"({parse * 1000:.3f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
