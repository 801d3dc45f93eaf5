"""A small pipeline for the studio's tests: a Lambda step that sleeps and counts rows, a condition on its
output, a Lambda step in the if branch and a Fail step in the else branch (as written by hand, no SDK)."""

from __future__ import annotations

import json
from pathlib import Path

ARN = "arn:aws:lambda:us-east-1:111122223333:function:studio-demo"
NAME = "studio-demo"

HANDLER = '''
import time


def prepare(event, context):
    print(f"preparing {event['rows']} rows", flush=True)
    time.sleep(float(event["seconds"]))
    print("prepared", flush=True)
    return {"rows": event["rows"]}


def score(event, context):
    print(f"scoring {event['rows']} rows", flush=True)
    return {"scored": event["rows"]}
'''


def lambda_step(name: str, function: str, arguments: dict, outputs: list[str]) -> dict:
    return {"Name": name, "Type": "Lambda", "FunctionArn": f"{ARN}-{function}", "Arguments": arguments,
            "OutputParameters": [{"OutputName": o, "OutputType": "Integer"} for o in outputs]}


def definition() -> dict:
    prepare = lambda_step("Prepare", "prepare", {"rows": {"Get": "Parameters.Rows"},
                                                 "seconds": {"Get": "Parameters.Seconds"}}, ["rows"])
    score = lambda_step("Score", "score", {"rows": {"Get": "Steps.Prepare.OutputParameters['rows']"}}, ["scored"])
    too_few = {"Name": "TooFew", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {"On": " ", "Values": [
        "too few rows:", {"Get": "Steps.Prepare.OutputParameters['rows']"}]}}}}
    check = {"Name": "EnoughRows", "Type": "Condition", "Arguments": {
        "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": {"Get": "Steps.Prepare.OutputParameters['rows']"},
                        "RightValue": {"Get": "Parameters.Threshold"}}],
        "IfSteps": [score], "ElseSteps": [too_few]}}
    return {"Version": "2020-12-01", "Metadata": {}, "Parameters": [
        {"Name": "Rows", "Type": "Integer", "DefaultValue": 100},
        {"Name": "Threshold", "Type": "Integer", "DefaultValue": 10},
        {"Name": "Seconds", "Type": "Float", "DefaultValue": 0.0},
        {"Name": "Mode", "Type": "String", "DefaultValue": "fast", "EnumValues": ["fast", "thorough"]},
    ], "Steps": [prepare, check]}


def write(folder: Path) -> tuple[Path, tuple[tuple[str, str], ...]]:
    """The definition file and the handlers, in ``folder``; returns (definition file, local_lambdas)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "handlers.py").write_text(HANDLER)
    path = folder / f"{NAME}.json"
    path.write_text(json.dumps(definition()))
    lambdas = tuple((f"{ARN}-{f}", f"{folder / 'handlers.py'}:{f}") for f in ("prepare", "score"))
    return path, lambdas
