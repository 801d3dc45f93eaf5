"""Transform: batch transform of every input object through the model, as the service does it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from inference.hosting import HostingError, InvocationError, Predictor, UnservableImageError, predictor_for
from pipelines.local.csv_jsonpath import select
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun
from pipelines.s3uri import join_uri, split_uri


def execute(run: StepRun) -> StepOutcome:
    """Run one transform job locally; each input object KEY becomes KEY.out under S3OutputPath."""
    args = run.arguments
    model = load_model_record(run, args["ModelName"])
    predictor = load_predictor(run, args["ModelName"], model["PrimaryContainer"])
    try:
        return transform(run, predictor)
    finally:
        predictor.close()


def transform(run: StepRun, predictor: Predictor) -> StepOutcome:
    """Send every input object through ``predictor``; unset request settings come from the container's
    ``/execution-parameters``, as the service takes them."""
    args = run.arguments
    served = predictor.execution_parameters
    source = args["TransformInput"]["DataSource"]["S3DataSource"]
    split_type = args["TransformInput"].get("SplitType", "None")
    content_type = args["TransformInput"].get("ContentType", "text/csv")
    output = args["TransformOutput"]
    accept = output.get("Accept", "text/csv")
    joiner = "\n" if output.get("AssembleWith", "None") == "Line" else ""
    processing = args.get("DataProcessing", {})
    strategy = args.get("BatchStrategy") or ("SingleRecord" if served.get("BatchStrategy") == "SINGLE_RECORD"
                                             else "MultiRecord")
    max_bytes = int(args.get("MaxPayloadInMB") or served.get("MaxPayloadInMB") or 6) * 1024 * 1024
    _, prefix = split_uri(source["S3Uri"])
    objects = run.store.objects(source["S3Uri"])
    if not objects:
        raise StepFailed(f"ClientError: no objects under {source['S3Uri']}")
    records_total = 0
    for key, path in objects:
        records = read_records(path, split_type)
        inputs = [",".join(select(r.split(","), processing.get("InputFilter", "$"))) for r in records]
        predictions: list[str] = []
        for batch in batches(inputs, strategy, max_bytes, key):
            try:
                body = predictor.invoke("\n".join(batch).encode(), content_type, accept)
            except InvocationError as exc:
                raise StepFailed(f"ClientError: {key}: the model container answered {exc}") from None
            lines = body.decode().splitlines()
            if len(lines) != len(batch):
                raise StepFailed(f"ClientError: {key}: {len(batch)} records sent, {len(lines)} predictions returned")
            predictions.extend(lines)
        out_lines = []
        for record, prediction in zip(records, predictions):
            joined = record.split(",") + prediction.split(",") if processing.get("JoinSource") == "Input" \
                else prediction.split(",")
            out_lines.append(",".join(select(joined, processing.get("OutputFilter", "$"))))
        relative = Path(key).name if key == prefix else key[len(prefix):].lstrip("/")
        run.store.put_bytes((joiner.join(out_lines) + ("\n" if joiner else "")).encode(),
                            join_uri(output["S3OutputPath"], relative + ".out"))
        records_total += len(records)
    run.log(f"transformed {records_total} records from {len(objects)} objects")
    properties = {**args, "TransformJobName": run.job_name, "TransformJobStatus": "Completed",
                  "TransformJobArn": run.job_arn("transform-job")}
    return StepOutcome(properties=properties)


def load_model_record(run: StepRun, model_name: str) -> dict[str, Any]:
    """The model a Model step recorded in the store."""
    path = run.store.model_path(model_name)
    if not path.exists():
        raise StepFailed(f"ClientError: Could not find model \"{model_name}\"")
    return json.loads(path.read_text())


def load_predictor(run: StepRun, model_name: str, container: dict[str, Any]) -> Predictor:
    """The model served as its container would serve it; one that cannot be loaded is the model's fault (a
    client error, never retried: the same artifact fails the same way every time)."""
    model_data_url = container.get("ModelDataUrl", "")
    path = run.store.path(model_data_url)
    if not path.is_file():
        raise StepFailed(f"ClientError: ModelDataUrl {model_data_url}: no such object in the store")
    try:
        return predictor_for(container.get("Image", ""), path, run.image_programs, run.runtime, run.environments)
    except UnservableImageError as exc:
        raise StepFailed(f"ClientError: model {model_name}: {exc}") from None
    except HostingError as exc:
        raise StepFailed(f"ClientError: ModelDataUrl {model_data_url}: {exc}") from None


def read_records(path: Path, split_type: str) -> list[str]:
    """An object's records: its lines (SplitType Line) or the whole object (None)."""
    text = path.read_text(encoding="utf-8")
    if split_type == "Line":
        return [line for line in text.splitlines() if line.strip()]
    if split_type == "None":
        return [text.rstrip("\n")]
    raise StepFailed(f"TransformInput.SplitType {split_type!r} is not supported locally (Line or None)")


def batches(records: list[str], strategy: str, max_bytes: int, key: str) -> Iterator[list[str]]:
    """Requests as the service packs them: whole records up to MaxPayloadInMB (MultiRecord) or one each."""
    batch: list[str] = []
    size = 0
    for record in records:
        record_size = len(record.encode()) + 1
        if record_size > max_bytes:
            raise StepFailed(f"ClientError: {key}: a record of {record_size} bytes exceeds MaxPayloadInMB")
        if batch and (strategy == "SingleRecord" or size + record_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += record_size
    if batch:
        yield batch
