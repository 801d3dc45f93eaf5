"""Validate raw label-first CSV and split it into train (sharded), validation and test.

Runs inside a SageMaker processing job (SKLearn image) and, unchanged, in the local
engine; it needs the Python standard library (3.8+) and numpy, and uses pandas when the image
has it. Input: every file under
--input-dir (plain or gzip, detected by content; Redshift UNLOAD part files need no
extension), label in the first column. Output: headerless, label-first CSV under
--output-dir/{train,validation,test} plus --output-dir/summary/summary.json.

The input is read once, validated and spooled to a temporary file; the split is then
streamed from the spool a block at a time with exact per-class quotas, so memory stays
bounded whatever the input size and the split is stratified and reproducible.
Nothing is written under --output-dir until the whole input has been validated, and
each output file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import math
import os
import re
import sys
import tempfile
import zlib
from typing import Dict, Iterator, List, Optional, Tuple

LABELS = {"0": "0", "1": "1", "0.0": "0", "1.0": "1", "f": "0", "t": "1", "false": "0", "true": "1"}
MISSING = {"", "nan", "NaN", "NAN", "null", "NULL", "\\N"}
SPLITS = ("train", "validation", "test")
FLOAT32_MAX = 3.4028234663852886e38  # XGBoost reads features as float32
UTF8_BOM = b"\xef\xbb\xbf"
BLOCK_BYTES = 1 << 20  # input checked at once
SPLIT_BLOCK_BYTES = 8 << 20  # spool bytes split at once


class InputError(Exception):
    """Bad input: the message names the file and line; ``reason`` groups it in the summary."""

    def __init__(self, message: str, reason: str = "invalid input"):
        super().__init__(message)
        self.reason = reason


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--input-dir", default="/opt/ml/processing/input/raw")
    p.add_argument("--output-dir", default="/opt/ml/processing/output")
    p.add_argument("--train-shards", type=int, default=1, help="number of files the train split is written as")
    p.add_argument("--validation-fraction", type=float, default=0.15)
    p.add_argument("--test-fraction", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=42, help="seed of the split (>= 0)")
    p.add_argument("--delimiter", default=",")
    p.add_argument("--header", choices=("absent", "present"), default="absent",
                   help="absent: files have no header (a header-like first line is reported and dropped); "
                        "present: the first line of every file is a header")
    p.add_argument("--bad-rows", choices=("fail", "skip"), default="fail",
                   help="fail on the first bad row, or skip bad rows up to the caps")
    p.add_argument("--max-bad-rows", type=int, default=1000, help="skip policy: most bad rows tolerated")
    p.add_argument("--max-bad-percent", type=float, default=1.0, help="skip policy: most bad rows tolerated, in %% of rows")
    p.add_argument("--work-dir", default=None, help="where the temporary spool goes (default: the system temp dir)")
    args = p.parse_args(argv)
    if args.train_shards < 1:
        p.error("--train-shards must be at least 1")
    if args.seed < 0:
        p.error("--seed must be >= 0")
    if not (0 <= args.validation_fraction < 1 and 0 < args.test_fraction < 1
            and args.validation_fraction + args.test_fraction < 1):
        p.error("--validation-fraction and --test-fraction must be in [0, 1) and sum to less than 1")
    return args


def input_files(input_dir: str) -> Tuple[List[str], List[str]]:
    """(data files, skipped files) below input_dir, sorted; dotfiles, dot-folders and Redshift manifests
    are not data: they are skipped, and the caller reports them."""
    found, skipped = [], []
    for root, dirs, files in os.walk(input_dir):
        skipped.extend(os.path.join(root, d) + "/" for d in sorted(dirs) if d.startswith("."))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            target = skipped if name.startswith(".") or name.endswith("manifest") else found
            target.append(os.path.join(root, name))
    return found, skipped


def read_blocks(path: str, name: str) -> Iterator[Tuple[int, bytes]]:
    """(number of its first line, block of whole lines) of a plain or gzip file (detected by its magic bytes):
    the first line alone (it may be a header), then about BLOCK_BYTES at a time; the file's last line may
    lack its line end. A UTF-8 byte-order mark is dropped; a damaged gzip stream is an InputError naming
    the file and the line reached."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    lines_read = 0
    parts: List[bytes] = []
    try:
        with opener(path, "rb") as handle:
            first = handle.readline()
            if not first:
                return
            lines_read = 1
            yield 1, first[len(UTF8_BOM):] if first.startswith(UTF8_BOM) else first
            size = 0
            while True:
                piece = handle.read1(BLOCK_BYTES)
                parts.append(piece)
                size += len(piece)
                if piece and (size < BLOCK_BYTES or b"\n" not in piece):  # a block ends at a line end, or at EOF
                    continue
                data = b"".join(parts)
                cut = data.rfind(b"\n") + 1 if piece else len(data)
                if cut:
                    yield lines_read + 1, data[:cut]
                    lines_read += data.count(b"\n", 0, cut)
                parts, size = [data[cut:]], len(data) - cut
                if not piece:
                    return
    except (OSError, EOFError, zlib.error) as exc:
        reached = lines_read + b"".join(parts).count(b"\n")
        raise InputError("%s: not a readable gzip file (%s) after line %d" % (name, exc or type(exc).__name__, reached),
                         "damaged gzip")


def decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError("%s: not UTF-8 text (byte 0x%02x at position %d)" % (where, raw[exc.start], exc.start + 1),
                         "not UTF-8")


def looks_like_header(fields: List[str]) -> bool:
    """A first line whose label and most features are not numbers is a header."""
    def numeric(text: str) -> bool:
        try:
            float(text)
            return True
        except ValueError:
            return text.strip() in MISSING
    return fields[0].strip().lower() not in LABELS and sum(not numeric(f) for f in fields) > len(fields) / 2


def plain_rows_pattern(width: int, delimiter: str) -> "re.Pattern[bytes]":
    """A line that normalise_row would accept and write unchanged: label 0 or 1, then ``width - 1`` fields
    that are empty or plain decimals of at most 38 integer digits (below float32's range, finite), no
    spaces, quotes or exponents; then the line end (none on a file's last line)."""
    separator = re.escape(delimiter.encode())
    number = rb"[+-]?(?:\d{1,38}(?:\.\d*)?|\.\d+)"
    return re.compile(rb"[01](?:" + separator + rb"(?:" + number + rb")?){%d}\r?\n?" % (width - 1))


_PLAIN_BYTES = b"0123456789.+-eE\n"


def plain_block(text: bytes, lines: int, width: int, delimiter: str, plain_row: "re.Pattern[bytes]") -> bool:
    """True if every line of ``text`` (each ending in a newline) is a row normalise_row would accept and write
    unchanged. With pandas (the processing image has it), the block is parsed by its C parser: only digits,
    signs, points, exponents and delimiters; the label column exactly 0 or 1; ``width`` fields on every line;
    every value finite and within float32's range. Without pandas, each line is matched by ``plain_row``."""
    try:
        import numpy as np
        import pandas as pd
    except ImportError:
        return all(map(plain_row.fullmatch, text.splitlines(keepends=True)))
    separator = delimiter.encode()
    if len(separator) != 1 or text.translate(None, _PLAIN_BYTES + separator):
        return False
    starts = np.frombuffer(b"\n" + text[:-1], dtype=np.uint8)
    heads = np.flatnonzero(starts == 10)  # the first byte of every line
    body = np.frombuffer(text, dtype=np.uint8)
    if len(heads) != lines or not np.isin(body[heads], (48, 49)).all() or (body[heads + 1] != separator[0]).any():
        return False
    # pandas pads a short row with NaN and refuses one longer than the first: with the total right, and the
    # shape checked below, every line has exactly width - 1 separators
    if text.count(separator) != lines * (width - 1):
        return False
    try:
        frame = pd.read_csv(io.BytesIO(text), header=None, sep=delimiter, dtype=np.float64, engine="c",
                            keep_default_na=False, na_values=[""], skip_blank_lines=False)
    except (ValueError, pd.errors.ParserError):
        return False
    values = frame.to_numpy()
    return (frame.shape == (lines, width) and bool(np.all(np.isnan(values) | (np.abs(values) <= FLOAT32_MAX)))
            and not np.isinf(values).any())


def normalise_row(fields: List[str], width: int, where: str) -> str:
    """The row as 'label,f1,...' with missing values empty; InputError if it is not valid."""
    if len(fields) != width:
        raise InputError("%s: expected %d columns, found %d" % (where, width, len(fields)), "wrong column count")
    label = LABELS.get(fields[0].strip().lower())
    if label is None:
        raise InputError('%s: column 1 (the label) must be 0 or 1, found "%s"' % (where, fields[0]), "label not 0 or 1")
    out = [label]
    for column, text in enumerate(fields[1:], start=2):
        text = text.strip()
        if text in MISSING:
            out.append("")
            continue
        try:
            value = float(text)
        except ValueError:
            raise InputError('%s: column %d is not a number: "%s"' % (where, column, text), "feature not a number")
        if math.isinf(value):
            raise InputError('%s: column %d is not a finite number: "%s"' % (where, column, text), "feature not finite")
        if abs(value) > FLOAT32_MAX:
            raise InputError('%s: column %d is outside float32\'s range (XGBoost reads features as float32): "%s"'
                             % (where, column, text), "feature outside float32")
        out.append(text)
    return ",".join(out)


class Spool:
    """Validated rows written to a temporary file, with per-class counts and a bad-row ledger."""

    def __init__(self, args: argparse.Namespace, handle: io.BufferedIOBase):
        self.args = args
        self.handle = handle
        self.width: Optional[int] = None
        self.counts = {"0": 0, "1": 0}
        self.rows_read = 0
        self.bad: List[str] = []
        self.bad_by_reason: Dict[str, int] = {}
        self.headers_dropped: List[str] = []
        self.digests: Dict[str, str] = {}  # content digest -> first file with that content
        self.duplicates: List[Tuple[str, str]] = []  # (file, earlier file with the same content)
        self.plain_rows: Optional["re.Pattern[bytes]"] = None  # set once the width is known

    def read_file(self, path: str) -> None:
        """Validate and spool one file, a block at a time: a block of plain rows (0/1 label, plain decimal
        features or empty fields, the expected width) is checked at once and spooled as it is; any other
        block goes line by line, which names the bad line exactly."""
        name = os.path.relpath(path, self.args.input_dir)
        digest = hashlib.sha256()
        for first_line, block in read_blocks(path, name):
            digest.update(block)
            if first_line == 1 or not self.spool_plain_block(block):
                lines = block.split(b"\n")
                for offset, raw in enumerate(lines[:-1] if not lines[-1] else lines):
                    self.read_line(name, first_line + offset, raw)
        first = self.digests.setdefault(digest.hexdigest(), name)
        if first != name:
            self.duplicates.append((name, first))
            print("%s: the same content as %s; its rows are counted twice and can land in both train and test"
                  % (name, first), file=sys.stderr)

    def read_line(self, name: str, number: int, raw: bytes) -> None:
        """Validate and spool one line (or drop a header, or record a bad row)."""
        where = "%s line %d" % (name, number)
        text = raw.rstrip(b"\r\n")
        if not text.strip():
            return
        try:
            fields = next(csv.reader([decode(text, where)], delimiter=self.args.delimiter))
        except csv.Error as exc:
            self.reject(InputError("%s: malformed CSV: %s" % (where, exc), "malformed CSV"))
            return
        except InputError as exc:
            self.reject(exc)
            return
        if number == 1 and (self.args.header == "present" or looks_like_header(fields)):
            if self.args.header == "absent":
                self.headers_dropped.append(where)
                print("%s: looks like a header row; dropped, not trained on" % where, file=sys.stderr)
            return
        self.rows_read += 1
        if self.width is None:
            self.width = len(fields)
            if self.width < 2:
                raise InputError("%s: a row needs the label and at least one feature; found 1 column" % where)
            self.plain_rows = plain_rows_pattern(self.width, self.args.delimiter)
        try:
            row = normalise_row(fields, self.width, where)
        except InputError as exc:
            self.reject(exc)
            return
        self.counts[row[0]] += 1
        self.handle.write(row.encode("utf-8") + b"\n")

    def spool_plain_block(self, block: bytes) -> bool:
        """Spool the block's lines as they are if every one is a plain valid row (what normalise_row would
        write unchanged); False, spooling nothing, otherwise."""
        if self.plain_rows is None:
            return False
        text = block.replace(b"\r\n", b"\n") if b"\r" in block else block
        if not text.endswith(b"\n"):
            text += b"\n"
        rows = text.count(b"\n")
        if not plain_block(text, rows, self.width or 0, self.args.delimiter, self.plain_rows):
            return False
        positives = text.count(b"\n1") + text.startswith(b"1")  # every line starts with its label
        self.counts["1"] += positives
        self.counts["0"] += rows - positives
        self.rows_read += rows
        self.handle.write(text)
        return True

    def reject(self, error: InputError) -> None:
        if self.args.bad_rows == "fail":
            raise error
        self.bad.append(str(error))
        self.bad_by_reason[error.reason] = self.bad_by_reason.get(error.reason, 0) + 1
        if len(self.bad) > self.args.max_bad_rows:
            raise InputError("more than %d bad rows (the --max-bad-rows cap); the first: %s"
                             % (self.args.max_bad_rows, self.bad[0]))

    def check_totals(self) -> None:
        total = sum(self.counts.values())
        if total == 0:
            raise InputError("%s: no data rows found (%d bad rows)" % (self.args.input_dir, len(self.bad)))
        percent = 100.0 * len(self.bad) / (total + len(self.bad))
        if percent > self.args.max_bad_percent:
            raise InputError("%d bad rows are %.2f%% of the input, above the --max-bad-percent cap of %.2f%%; the first: %s"
                             % (len(self.bad), percent, self.args.max_bad_percent, self.bad[0]))
        for label, other in (("0", "1"), ("1", "0")):
            if self.counts[label] == 0:
                raise InputError("all %d rows have label %s: a classifier needs both classes (no row has label %s)"
                                 % (total, other, label))


class SplitWriter:
    """Writes rows into split files under temporary names; ``commit`` renames them into place."""

    def __init__(self, output_dir: str, train_shards: int):
        self.files: Dict[str, List[Tuple[str, io.BufferedWriter]]] = {}
        names = {"train": ["part-%05d.csv" % i for i in range(train_shards)],
                 "validation": ["validation.csv"], "test": ["test.csv"]}
        for split, file_names in names.items():
            directory = os.path.join(output_dir, split)
            os.makedirs(directory, exist_ok=True)
            self.files[split] = []
            for file_name in file_names:
                final = os.path.join(directory, file_name)
                tmp = os.path.join(directory, ".%s.tmp" % file_name)
                self.files[split].append((final, open(tmp, "wb")))
        self.rows = {split: 0 for split in SPLITS}
        self.positives = {split: 0 for split in SPLITS}

    def write(self, split: str, lines: List[bytes], positives: int) -> None:
        """Append rows (without their line ends) to a split; a split's rows go round-robin over its shards."""
        shards = self.files[split]
        start = self.rows[split]
        for index, (_, handle) in enumerate(shards):
            mine = lines[(index - start) % len(shards)::len(shards)]
            if mine:
                handle.write(b"\n".join(mine) + b"\n")
        self.rows[split] += len(lines)
        self.positives[split] += positives

    def commit(self) -> None:
        for shards in self.files.values():
            for final, handle in shards:
                handle.close()
                os.replace(handle.name, final)

    def abort(self) -> None:
        for shards in self.files.values():
            for _, handle in shards:
                handle.close()
                if os.path.exists(handle.name):
                    os.remove(handle.name)


def quotas(count: int, args: argparse.Namespace) -> Dict[str, int]:
    """Exact rows per split for one class."""
    test = int(round(count * args.test_fraction))
    validation = int(round(count * args.validation_fraction))
    return {"test": test, "validation": validation, "train": count - test - validation}


def split_rows(spool_path: str, spool: Spool, writer: SplitWriter, args: argparse.Namespace) -> None:
    """Stream the spool into splits a block at a time. For each class, how many of the block's rows go to
    each split is drawn from the multivariate hypergeometric distribution over the rows the class still
    needs per split, and which rows by a seeded permutation: every assignment meeting the class's exact
    quotas is equally likely, as with selection sampling, at numpy's speed and in bounded memory."""
    import numpy as np

    remaining = {label: quotas(n, args) for label, n in spool.counts.items()}
    rngs = {label: np.random.default_rng([args.seed, int(label)]) for label in spool.counts}
    with open(spool_path, "rb") as rows:
        while True:
            block = rows.read(SPLIT_BLOCK_BYTES)
            if not block:
                break
            block += rows.readline()  # whole lines: every spooled row ends with a line feed
            data = np.frombuffer(block, np.uint8)
            ends = np.flatnonzero(data == 10)
            labels = data[np.concatenate(([0], ends[:-1] + 1))]
            split_of = np.empty(len(ends), np.int8)
            for label, need in remaining.items():
                members = np.flatnonzero(labels == ord(label))
                if not len(members):
                    continue
                counts = rngs[label].multivariate_hypergeometric([need[split] for split in SPLITS], len(members))
                for split, count in zip(SPLITS, counts):
                    need[split] -= int(count)
                split_of[members] = rngs[label].permutation(np.repeat(np.arange(len(SPLITS), dtype=np.int8), counts))
            lines = np.array(block[:-1].split(b"\n"), dtype=object)
            for index, split in enumerate(SPLITS):
                chosen = split_of == index
                writer.write(split, lines[chosen].tolist(), int(np.count_nonzero(labels[chosen] == ord("1"))))


def write_json_atomically(path: str, payload: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = os.path.join(os.path.dirname(path), ".%s.tmp" % os.path.basename(path))
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def summary(spool: Spool, writer: SplitWriter, files: List[str], skipped: List[str], args: argparse.Namespace) -> dict:
    return {
        "input_files": [os.path.relpath(f, args.input_dir) for f in files],
        "skipped_files": [os.path.relpath(f, args.input_dir) for f in skipped],
        "duplicate_files": [{"file": name, "same_content_as": first} for name, first in spool.duplicates],
        "rows_read": spool.rows_read,
        "rows_written": sum(writer.rows.values()),
        "columns": spool.width,
        "header_rows_dropped": spool.headers_dropped,
        "bad_rows": {"policy": args.bad_rows, "count": len(spool.bad), "by_reason": spool.bad_by_reason,
                     "examples": spool.bad[:20]},
        "splits": {
            split: {"rows": writer.rows[split], "positives": writer.positives[split],
                    "positive_rate": round(writer.positives[split] / writer.rows[split], 6) if writer.rows[split] else None,
                    "files": [os.path.basename(final) for final, _ in writer.files[split]]}
            for split in SPLITS
        },
        "seed": args.seed,
        "fractions": {"validation": args.validation_fraction, "test": args.test_fraction},
    }


def run(args: argparse.Namespace) -> dict:
    """Validate, spool and split; return the summary. Raises InputError on bad input."""
    files, skipped = input_files(args.input_dir)
    if skipped:
        print("skipped %d file%s that are not data (dotfiles, Redshift manifests): %s" % (
            len(skipped), "" if len(skipped) == 1 else "s",
            ", ".join(os.path.relpath(f, args.input_dir) for f in skipped[:10])), file=sys.stderr)
    if not files:
        raise InputError("%s: no input files found" % args.input_dir)
    spool_fd, spool_path = tempfile.mkstemp(prefix="preprocess-spool-", suffix=".csv", dir=args.work_dir)
    try:
        with os.fdopen(spool_fd, "wb") as handle:
            spool = Spool(args, handle)
            for path in files:
                spool.read_file(path)
        spool.check_totals()
        writer = SplitWriter(args.output_dir, args.train_shards)
        try:
            split_rows(spool_path, spool, writer, args)
        except BaseException:
            writer.abort()
            raise
        writer.commit()
    finally:
        os.remove(spool_path)
    result = summary(spool, writer, files, skipped, args)
    write_json_atomically(os.path.join(args.output_dir, "summary", "summary.json"), result)
    return result


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except InputError as exc:
        print("preprocess: bad input: %s" % exc, file=sys.stderr)
        return 1
    for split in SPLITS:
        info = result["splits"][split]
        print("%-10s %9d rows  positive rate %.4f  (%d file%s)" % (
            split, info["rows"], info["positive_rate"] or 0.0, len(info["files"]), "" if len(info["files"]) == 1 else "s"))
    if result["bad_rows"]["count"] or result["header_rows_dropped"]:
        print("dropped: %d bad rows, %d header rows" % (result["bad_rows"]["count"], len(result["header_rows_dropped"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
