"""The partial output of a scoring run and its progress record, so an interrupted run resumes with every row once.

``OUTPUT.partial`` only grows by whole requests, in input order; after each append (and flush) the
progress record ``OUTPUT.progress.json`` is replaced atomically with the rows and bytes written and three
digests: of the partial's bytes, and of the features and ids of the input rows scored so far. A run
killed at any moment (SIGKILL included) leaves a record that describes a prefix of the partial, so
``--resume`` cuts the partial back to it and goes on from the next row.

Nothing in the record is trusted: on resume the partial must hash to the recorded digest and hold the
recorded rows, and the input's first rows must hash to the recorded digests, so an edited or corrupt
record, a changed partial or an input whose first rows changed (even at the same size) is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
from pathlib import Path
from typing import IO, Any, Iterator

from inference.payloads import PayloadError, Request, split_ids
from pipelines.atomic import write_text
from pipelines.errors import ConfigError

_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_DEFERRED_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_CHUNK = 1 << 20


FLAGS = {"input": "--input", "id_columns": "--id-columns", "endpoint": "--endpoint-name"}  # what the identity holds

class Checkpoint:
    """The partial output and its progress record."""

    def __init__(self, output: Path, identity: dict[str, Any], id_columns: int):
        self.output = output
        self.partial = output.with_name(output.name + ".partial")
        self.progress = output.with_name(output.name + ".progress.json")
        self.identity = json.loads(json.dumps(identity))
        self.id_columns = id_columns
        self.rows = 0  # rows in the partial that the saved record covers
        self.handle: IO[bytes] | None = None
        self._output_digest = hashlib.sha256()
        self._features_digest = hashlib.sha256()
        self._ids_digest = hashlib.sha256()

    def files(self) -> list[Path]:
        """The files this run writes: the output, the partial output and the progress record."""
        return [self.output, self.partial, self.progress]

    def start(self, resume: bool, source_rows: Iterator[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
        """Open the partial output; the input rows still to score (after the ones a resumed run already scored)."""
        if not resume:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.partial, "wb")
            self._save()
            return source_rows
        state = self._read_record()
        size = state["bytes"]
        if not self.partial.is_file() or self.partial.stat().st_size < size:
            raise ConfigError(f"--resume: {self.partial} is missing or shorter than {self.progress} records; "
                              "start again without --resume")
        self.handle = open(self.partial, "r+b")
        self.handle.truncate(size)  # what a run killed after appending but before its record wrote
        lines = self._hash_partial(size)
        if self._output_digest.hexdigest() != state["output_sha256"] or lines != state["rows"]:
            raise ConfigError(f"--resume: {self.partial} does not match {self.progress} (changed since the "
                              "interrupted run); start again without --resume")
        self.handle.seek(size)
        remaining = self._skip_scored(source_rows, state["rows"])
        if [self._features_digest.hexdigest(), self._ids_digest.hexdigest()] != state["input_sha256"]:
            raise ConfigError(f"--resume: the first {state['rows']} rows of the input differ from the rows the "
                              "interrupted run scored; start again without --resume")
        self.rows = state["rows"]
        return remaining

    def _read_record(self) -> dict[str, Any]:
        if not self.progress.is_file():
            raise ConfigError(f"--resume: there is no interrupted run to continue ({self.progress} not found)")
        unreadable = ConfigError(f"--resume: {self.progress} is unreadable or was edited; start again without --resume")
        try:
            state = json.loads(self.progress.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise unreadable from None
        if not isinstance(state, dict):
            raise unreadable
        counts = [state.get("rows"), state.get("bytes")]
        digests = [state.get("output_sha256"), *(state.get("input_sha256") or [None])]
        if (not all(type(n) is int and n >= 0 for n in counts) or len(digests) != 3
                or not all(isinstance(d, str) and _HEX_DIGEST.fullmatch(d) for d in digests)):
            raise unreadable
        differing = [f"{FLAGS.get(k, k)} {state.get(k)!r} then, {value!r} now" for k, value in self.identity.items()
                     if state.get(k) != value]
        if differing:
            raise ConfigError(f"--resume: the interrupted run ({self.progress}) had other settings: "
                              f"{'; '.join(differing)}; resume with its settings, or start again without --resume")
        return state

    def _hash_partial(self, size: int) -> int:
        assert self.handle is not None
        self.handle.seek(0)
        left, lines = size, 0
        while left > 0:
            chunk = self.handle.read(min(_CHUNK, left))
            if not chunk:
                break
            self._output_digest.update(chunk)
            lines += chunk.count(b"\n")
            left -= len(chunk)
        return lines

    def _skip_scored(self, source_rows: Iterator[tuple[str, bytes]], count: int) -> Iterator[tuple[str, bytes]]:
        try:
            for _ in range(count):
                where, row = next(source_rows)
                ids, features = split_ids(where, row, self.id_columns)
                self._features_digest.update(features + b"\n")
                self._ids_digest.update(ids + b"\n")
        except StopIteration:
            raise ConfigError(f"--resume: the input has fewer rows than the {count} the interrupted run scored; "
                              "start again without --resume") from None
        except PayloadError as exc:
            raise ConfigError(f"--resume: {exc}") from None
        return source_rows

    def write(self, request: Request, scores: list[bytes]) -> None:
        """Append one request's rows (ids, then the score) and record the progress.

        SIGINT and SIGTERM wait until both are written, so an interruption leaves them consistent."""
        assert self.handle is not None
        if request.ids and request.ids[0]:
            lines = [ids + b"," + score for ids, score in zip(request.ids, scores)]
        else:
            lines = scores
        data = b"\n".join(lines) + b"\n"
        signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED_SIGNALS)
        try:
            self.handle.write(data)
            self.handle.flush()
            self._output_digest.update(data)
            self._features_digest.update(request.body)
            self._ids_digest.update(b"\n".join(request.ids) + b"\n")
            self._save(request.rows)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _DEFERRED_SIGNALS)

    def _save(self, new_rows: int = 0) -> None:
        assert self.handle is not None
        record = {**self.identity, "rows": self.rows + new_rows, "bytes": self.handle.tell(),
                  "output_sha256": self._output_digest.hexdigest(),
                  "input_sha256": [self._features_digest.hexdigest(), self._ids_digest.hexdigest()]}
        write_text(self.progress, json.dumps(record))
        self.rows += new_rows

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()

    def finish(self) -> None:
        """Every row is scored: the partial output becomes the output."""
        os.replace(self.partial, self.output)
        self.progress.unlink(missing_ok=True)
