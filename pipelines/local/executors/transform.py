"""Transform: batch transform of every input object through the model, as the service does it
(``CreateTransformJob``: ``TransformInput``, ``BatchStrategy``, ``MaxPayloadInMB``, ``DataProcessing``,
``TransformOutput``).

- ``SplitType`` ``None`` (the default): each object is one request and one record; ``Line``: its lines are
  the records, sent one per request (``SingleRecord``) or as many as fit in ``MaxPayloadInMB`` (``MultiRecord``;
  0: no limit). ``RecordIO`` and ``TFRecord`` are refused.
- ``CompressionType`` ``Gzip``: the object is decompressed first.
- Without ``JoinSource`` or ``OutputFilter``, the responses are the output, as the container wrote them:
  ``AssembleWith`` ``None`` concatenates them, ``Line`` ends each with a newline. With them, each record gets
  its own prediction (a container must answer one per record it was sent), joined to the input (CSV: the
  input's fields then the prediction's; JSON: ``SageMakerOutput`` added to an input object, else
  ``SageMakerInput`` and ``SageMakerOutput``) and filtered.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from inference.hosting import HostingError, InvocationError, Predictor, UnservableImageError, predictor_for
from pipelines.errors import DefinitionError
from pipelines.local import safe_files
from pipelines.local.csv_jsonpath import select
from pipelines.local.executors.base import StepFailed, StepOutcome, StepRun
from pipelines.s3uri import join_uri, split_uri

CSV_TYPES = ("text/csv", "text/plain")
JSON_TYPES = ("application/json", "application/jsonlines", "application/x-jsonlines")
DEFAULT_MAX_PAYLOAD_MB = 6


@dataclass(frozen=True)
class Settings:
    """How one transform job reads, sends, joins and writes its records."""

    split: str
    compression: str
    content_type: str
    accept: str
    line_ends: bool  # AssembleWith Line
    strategy: str
    max_bytes: int | None  # None: no limit (MaxPayloadInMB 0)
    input_filter: str
    join: bool
    output_filter: str

    @property
    def per_record(self) -> bool:
        """True if each record needs a prediction of its own (to join it or filter the output)."""
        return self.join or self.output_filter != "$"


def settings_of(args: dict[str, Any], served: dict[str, Any]) -> Settings:
    """The job's settings; unset request settings come from the container's ``/execution-parameters``, as the
    service takes them. StepFailed naming the field for what cannot run locally."""
    given = args["TransformInput"]
    split = given.get("SplitType") or "None"
    if split not in ("None", "Line"):
        raise StepFailed(f"ClientError: TransformInput.SplitType {split!r}: only None and Line are supported locally "
                         "(RecordIO and TFRecord records are not split here)")
    data_type = given.get("DataSource", {}).get("S3DataSource", {}).get("S3DataType") or "S3Prefix"
    if data_type != "S3Prefix":
        raise StepFailed(f"ClientError: TransformInput.DataSource.S3DataSource.S3DataType {data_type!r}: only S3Prefix "
                         "is supported locally (list the objects under a prefix instead of a manifest)")
    compression = given.get("CompressionType") or "None"
    if compression not in ("None", "Gzip"):
        raise StepFailed(f"ClientError: TransformInput.CompressionType {compression!r}: one of None, Gzip")
    output = args["TransformOutput"]
    processing = args.get("DataProcessing") or {}
    strategy = args.get("BatchStrategy") or ("SingleRecord" if served.get("BatchStrategy") == "SINGLE_RECORD"
                                             else "MultiRecord")
    megabytes = args.get("MaxPayloadInMB")
    if megabytes is None:
        megabytes = served.get("MaxPayloadInMB", DEFAULT_MAX_PAYLOAD_MB)
    return Settings(split=split, compression=compression, content_type=given.get("ContentType") or "text/csv",
                    accept=output.get("Accept") or "text/csv", line_ends=output.get("AssembleWith") == "Line",
                    strategy=strategy, max_bytes=int(megabytes) * 1024 * 1024 if int(megabytes) > 0 else None,
                    input_filter=processing.get("InputFilter") or "$", join=processing.get("JoinSource") == "Input",
                    output_filter=processing.get("OutputFilter") or "$")


def execute(run: StepRun) -> StepOutcome:
    """Run one transform job locally; each input object KEY becomes KEY.out under S3OutputPath. Its job log
    (``logs ID STEP``) holds the transform's lines and the output of a local ``serve`` program."""
    job_log = run.job_dir / "job.log"

    def say(line: str) -> None:
        run.log(line)
        with safe_files.open_append(run.job_dir, job_log) as handle:
            handle.write((line + "\n").encode("utf-8"))

    args = run.arguments
    model = load_model_record(run, args["ModelName"])
    predictor = load_predictor(run, args["ModelName"], model["PrimaryContainer"], job_log)
    try:
        return transform(run, predictor, say)
    finally:
        predictor.close()


def transform(run: StepRun, predictor: Predictor, say: Callable[[str], None]) -> StepOutcome:
    """Send every input object through ``predictor`` and write its output object."""
    args = run.arguments
    settings = settings_of(args, predictor.execution_parameters)
    source = args["TransformInput"]["DataSource"]["S3DataSource"]
    _, prefix = split_uri(source["S3Uri"])
    objects = run.store.objects(source["S3Uri"])
    if not objects:
        raise StepFailed(f"ClientError: no objects under {source['S3Uri']}")
    say(f"transforming {len(objects)} objects under {source['S3Uri']}: SplitType {settings.split}, "
        f"BatchStrategy {settings.strategy}, ContentType {settings.content_type}, Accept {settings.accept}")
    records_total = requests_total = 0
    for key, path in objects:
        records = split(read_object(path, settings.compression, key), settings.split)
        output, requests = transform_object(predictor, settings, records, key)
        relative = Path(key).name if key == prefix else key[len(prefix):].lstrip("/")
        run.store.put_bytes(output, join_uri(args["TransformOutput"]["S3OutputPath"], relative + ".out"))
        say(f"{key}: {len(records)} records in {requests} requests -> {relative}.out ({len(output)} bytes)")
        records_total += len(records)
        requests_total += requests
    say(f"transformed {records_total} records from {len(objects)} objects in {requests_total} requests")
    properties = {**args, "TransformJobName": run.job_name, "TransformJobStatus": "Completed",
                  "TransformJobArn": run.job_arn("transform-job")}
    return StepOutcome(properties=properties)


GZIP_MAGIC = b"\x1f\x8b"


def read_object(path: Path, compression: str, key: str) -> bytes:
    """An input object's bytes, decompressed if its CompressionType says so."""
    data = path.read_bytes()
    if compression != "Gzip":
        if data.startswith(GZIP_MAGIC):  # the service would send these bytes as they are, and the model refuse them
            raise StepFailed(f"ClientError: {key} is gzip data: set TransformInput.CompressionType to Gzip (the "
                             "SDK's Transformer.transform(compression_type='Gzip')), or give uncompressed input")
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise StepFailed(f"ClientError: {key}: TransformInput.CompressionType is Gzip and the object is not "
                         f"gzip data ({exc})") from None


def split(data: bytes, split_type: str) -> list[bytes]:
    """An object's records: its non-blank lines (SplitType Line) or the whole object (None)."""
    if split_type == "Line":
        return [line.rstrip(b"\r") for line in data.split(b"\n") if line.strip()]
    return [data]


def transform_object(predictor: Predictor, settings: Settings, records: list[bytes], key: str) -> tuple[bytes, int]:
    """One object's output and how many requests it took."""
    sent = [filtered_input(record, settings, key) for record in records]
    pieces: list[bytes] = []
    requests = 0
    for batch in batches([len(body) for body in sent], settings, key):
        body = b"\n".join(sent[i] for i in batch)
        try:
            response = predictor.invoke(body, settings.content_type, settings.accept)
        except InvocationError as exc:
            raise StepFailed(f"ClientError: {key}: the model container answered {exc}") from None
        requests += 1
        if not settings.per_record:
            pieces.append(response)
            continue
        for index, prediction in zip(batch, predictions(response, settings, len(batch), key)):
            pieces.append(joined_output(records[index], prediction, settings, key))
    if settings.line_ends:
        pieces = [piece if piece.endswith(b"\n") else piece + b"\n" for piece in pieces]
    return b"".join(pieces), requests


def batches(sizes: list[int], settings: Settings, key: str) -> Iterator[list[int]]:
    """Requests as the service packs them (record indexes): whole records up to MaxPayloadInMB (MultiRecord)
    or one each; with SplitType None each object is one request."""
    batch: list[int] = []
    size = 0
    for index, record_size in enumerate(sizes):
        if settings.max_bytes is not None and record_size > settings.max_bytes:
            what = "the object" if settings.split == "None" else "a record"
            hint = "; set SplitType Line to send its lines as records" if settings.split == "None" else ""
            raise StepFailed(f"ClientError: {key}: {what} of {record_size} bytes exceeds MaxPayloadInMB "
                             f"({settings.max_bytes // (1024 * 1024)} MB){hint}")
        added = record_size + (1 if batch else 0)
        if batch and (settings.strategy == "SingleRecord" or
                      (settings.max_bytes is not None and size + added > settings.max_bytes)):
            yield batch
            batch, size, added = [], 0, record_size
        batch.append(index)
        size += added
    if batch:
        yield batch


def _kind(media_type: str) -> str:
    base = media_type.split(";")[0].strip().lower()
    return "csv" if base in CSV_TYPES else "json" if base in JSON_TYPES else "other"


def _text(data: bytes, key: str, why: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise StepFailed(f"ClientError: {key}: {why} needs UTF-8 text records, and this object is not") from None


def filtered_input(record: bytes, settings: Settings, key: str) -> bytes:
    """What is sent of one record: the part its InputFilter selects (a CSV record's fields; every line of
    an object sent whole)."""
    if settings.input_filter.strip() == "$":
        return record
    if _kind(settings.content_type) != "csv":
        raise StepFailed(f"ClientError: DataProcessing.InputFilter {settings.input_filter!r}: filters are applied "
                         f"locally to CSV records only, and TransformInput.ContentType is {settings.content_type}")
    text = _text(record, key, "DataProcessing.InputFilter")
    return "\n".join(",".join(_select(line.split(","), settings.input_filter, "InputFilter"))
                     for line in text.splitlines() if line.strip()).encode()


def predictions(response: bytes, settings: Settings, expected: int, key: str) -> list[bytes]:
    """A response's predictions, one per record sent; StepFailed if the container answered another number."""
    kind = _kind(settings.accept)
    if kind == "json" and expected == 1:
        found = [response.strip()]
    elif kind in ("csv", "json"):
        found = [line.rstrip(b"\r") for line in response.split(b"\n") if line.strip()]
    else:
        raise StepFailed(f"ClientError: TransformOutput.Accept {settings.accept}: joining or filtering "
                         "predictions needs text/csv or JSON Lines output")
    if len(found) != expected:
        why = ("with SplitType None each object is one record; set SplitType Line to send its lines as records"
               if settings.split == "None" else "a container must answer one prediction per record it is sent")
        raise StepFailed(f"ClientError: {key}: {expected} records sent, {len(found)} predictions returned: "
                         f"DataProcessing.JoinSource Input and OutputFilter take one prediction per record ({why})")
    return found


def joined_output(record: bytes, prediction: bytes, settings: Settings, key: str) -> bytes:
    """One record's output: its prediction, joined to the input record if JoinSource says so, then filtered."""
    if _kind(settings.accept) == "json" or (settings.join and _kind(settings.content_type) == "json"):
        if settings.output_filter.strip() != "$":
            raise StepFailed(f"ClientError: DataProcessing.OutputFilter {settings.output_filter!r}: filters are "
                             "applied locally to CSV records only")
        output = _json(prediction, key, "a prediction")
        if settings.join:
            given = _json(record, key, "an input record")
            output = ({**given, "SageMakerOutput": output} if isinstance(given, dict)
                      else {"SageMakerInput": given, "SageMakerOutput": output})
        return json.dumps(output).encode()
    fields = _text(prediction, key, "DataProcessing").split(",")
    if settings.join:
        fields = _text(record, key, "DataProcessing.JoinSource").split(",") + fields
    return ",".join(_select(fields, settings.output_filter, "OutputFilter")).encode()


def _json(data: bytes, key: str, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise StepFailed(f"ClientError: {key}: {what} is not JSON, and the job joins JSON records") from None


def _select(fields: list[str], expression: str, field_name: str) -> list[str]:
    try:
        return select(fields, expression)
    except DefinitionError as exc:
        raise StepFailed(f"ClientError: DataProcessing.{field_name}: {exc}") from None


def load_model_record(run: StepRun, model_name: str) -> dict[str, Any]:
    """The model a Model step recorded in the store."""
    path = run.store.model_path(model_name)
    try:
        return json.loads(safe_files.read_bytes(run.store.root, path))
    except FileNotFoundError:
        raise StepFailed(f"ClientError: Could not find model \"{model_name}\"") from None


def load_predictor(run: StepRun, model_name: str, container: dict[str, Any], log_file: Path) -> Predictor:
    """The model served as its container would serve it (a local ``serve`` program's output goes to
    ``log_file``); one that cannot be loaded is the model's fault (a client error, never retried: the same
    artifact fails the same way every time)."""
    model_data_url = container.get("ModelDataUrl", "")
    path = run.store.path(model_data_url)
    if not path.is_file():
        raise StepFailed(f"ClientError: ModelDataUrl {model_data_url}: no such object in the store")
    try:
        return predictor_for(container.get("Image", ""), path, run.image_programs, run.runtime, run.environments,
                             log_file=log_file)
    except UnservableImageError as exc:
        raise StepFailed(f"ClientError: model {model_name}: {exc}") from None
    except HostingError as exc:
        raise StepFailed(f"ClientError: ModelDataUrl {model_data_url}: {exc}") from None
