"""The built-in XGBoost container's serving rules for text/csv, as a pure function.

Rows are headerless features (no label), every row the same width, empty fields NaN.
Errors carry the HTTP status the container returns.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any, Callable

from container.model import width_problem
from processing.archives import ArchiveError, extract
from processing.evaluate import import_xgboost, load_booster_file

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
CSV_TYPES = ("text/csv",)


class InvocationError(Exception):
    """A request the container refuses; ``status`` is its HTTP status code."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def load_model(archive: Path, convert: Callable[[Path], Path] | None = None) -> Any:
    """The Booster(s) inside a model.tar.gz; several model files are averaged as an ensemble. A file this
    XGBoost cannot read (an older image's binary format) is read from what ``convert`` makes of it."""
    boosters = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            files = extract(archive, tmp)
        except ArchiveError as exc:
            raise InvocationError(500, str(exc)) from None
        for name in sorted(files):
            if not Path(name).name.startswith("."):
                boosters.append(_load(Path(tmp) / name, convert))
    if not boosters:
        raise InvocationError(500, f"no model file in {archive.name}")
    return boosters


def _load(path: Path, convert: Callable[[Path], Path] | None) -> Any:
    try:
        return load_booster_file(str(path))
    except Exception as exc:  # noqa: BLE001 - XGBoost's own error type exists only once xgboost is imported
        if type(exc).__name__ != "XGBoostError":
            raise
        if convert is None:
            if "binary format" not in str(exc):
                raise
            raise InvocationError(500, f"{path.name} is in XGBoost's old binary format, which the XGBoost here "
                                       f"({import_xgboost().__version__}) no longer reads; its image's environment "
                                       "reads it (image libraries 'image', the default)") from None
    return load_booster_file(str(convert(path)))


def parse_csv(body: bytes) -> Any:
    """Features from a CSV body; InvocationError 415 if it cannot be parsed.

    pandas' C parser reads a well-formed body; a body it refuses is read again row by row, so the
    error names the row exactly as the container's message does.
    """
    import numpy as np
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(body), header=None, dtype=np.float32, engine="c", skip_blank_lines=True,
                            keep_default_na=False, na_values=[""], encoding="utf-8")
        rows, width = frame.shape
        if body.count(b",") == rows * (width - 1):  # pandas pads a short row with NaN; the container refuses it
            return frame.to_numpy(dtype=np.float32)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        pass
    return _parse_rows(body)


def _parse_rows(body: bytes) -> Any:
    import numpy as np

    rows = [line for line in body.decode("utf-8", errors="strict").splitlines() if line.strip()]
    width = None
    values = []
    for number, line in enumerate(rows, start=1):
        fields = line.split(",")
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise InvocationError(415, f"row {number} has {len(fields)} columns, expected {width}")
        try:
            values.append([float(f) if f.strip() else np.nan for f in fields])
        except ValueError:
            raise InvocationError(415, f"row {number} is not numeric CSV: {line[:80]!r}") from None
    return np.asarray(values, dtype=np.float32)


def invoke(boosters: list[Any], body: bytes, content_type: str = "text/csv", accept: str = "text/csv") -> bytes:
    """One invocation: CSV in, one prediction per line out (newline-terminated)."""
    import numpy as np
    xgb = import_xgboost()

    if len(body) > MAX_PAYLOAD_BYTES:
        raise InvocationError(413, f"request body of {len(body)} bytes exceeds {MAX_PAYLOAD_BYTES} bytes")
    if not body.strip():
        raise InvocationError(204, "empty request body")
    if content_type.split(";")[0].strip() not in CSV_TYPES:
        raise InvocationError(415, f"content type {content_type} is not served locally (text/csv only)")
    if accept.split(";")[0].strip() not in ("text/csv", "*/*"):
        raise InvocationError(406, f"accept type {accept} is not supported")
    widest = boosters[0].num_features()
    first_row = body.lstrip(b"\r\n").split(b"\n", 1)[0]
    if first_row.count(b",") + 1 > widest:  # checked before parsing: a row of a million columns parses for seconds
        raise InvocationError(400, width_problem(1, first_row.count(b",") + 1, widest))
    try:
        features = parse_csv(body)
    except UnicodeDecodeError:
        raise InvocationError(415, "request body is not UTF-8 text") from None
    if features.shape[1] != widest:
        # XGBoost would score a narrower row with the missing features as NaN: a silent wrong answer
        raise InvocationError(400, width_problem(1, features.shape[1], widest))
    try:
        matrix = xgb.DMatrix(features, missing=np.nan)
        scores = np.mean([b.predict(matrix) for b in boosters], axis=0)
    except xgb.core.XGBoostError as exc:
        raise InvocationError(400, f"prediction failed: {str(exc).splitlines()[0]}") from None
    out = io.StringIO()
    for score in np.atleast_1d(scores):
        out.write(f"{float(score):.9g}\n")
    return out.getvalue().encode()
