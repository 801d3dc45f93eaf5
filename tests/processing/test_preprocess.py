"""processing/preprocess.py on real files: validation messages, skip policy, split properties."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from processing import preprocess


def run(tmp_path: Path, files: dict[str, bytes], *extra: str) -> tuple[int, Path]:
    raw = tmp_path / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (raw / name).write_bytes(data)
    out = tmp_path / "out"
    code = preprocess.main(["--input-dir", str(raw), "--output-dir", str(out), "--train-shards", "3", *extra])
    return code, out


def good_rows(n: int, positives_every: int = 5) -> str:
    return "".join(f"{int(i % positives_every == 0)},{i % 7},{i * 0.5},\n" for i in range(n))


@pytest.mark.parametrize("content, message", [
    (good_rows(10) + "1,2\n", "leads.csv line 11: expected 4 columns, found 2"),
    (good_rows(36) + "1,2,abc,\n", 'leads.csv line 37: column 3 is not a number: "abc"'),
    (good_rows(5) + "2,1,1,\n", 'leads.csv line 6: column 1 (the label) must be 0 or 1, found "2"'),
    (good_rows(3) + "1,inf,1,\n", 'leads.csv line 4: column 2 is not a finite number: "inf"'),
    ("", "no data rows found"),
    ("0,1,2,\n0,3,4,\n", "all 2 rows have label 0: a classifier needs both classes"),
])
def test_bad_input_names_file_and_line_and_writes_nothing(tmp_path, capsys, content, message):
    code, out = run(tmp_path, {"leads.csv": content.encode()})
    assert code == 1
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


def test_non_utf8_bytes(tmp_path, capsys):
    code, out = run(tmp_path, {"leads.csv": good_rows(4).encode() + b"1,\xff,2,\n"})
    assert code == 1 and "leads.csv line 5: not UTF-8 text (byte 0xff at position 3)" in capsys.readouterr().err


def test_skip_policy_counts_and_caps(tmp_path):
    content = good_rows(1000) + "1,x,1,\n" * 3 + "7,1,1,\n"
    code, out = run(tmp_path, {"a.csv": content.encode()}, "--bad-rows", "skip", "--max-bad-percent", "1")
    assert code == 0
    summary = json.loads((out / "summary" / "summary.json").read_text())
    assert summary["bad_rows"]["count"] == 4
    assert summary["bad_rows"]["by_reason"] == {"feature not a number": 3, "label not 0 or 1": 1}
    assert summary["rows_written"] == 1000
    code, _ = run(tmp_path / "capped", {"a.csv": content.encode()}, "--bad-rows", "skip", "--max-bad-rows", "2")
    assert code == 1


def test_split_is_stratified_reproducible_sharded_and_reads_gzip_and_headers(tmp_path):
    text = good_rows(5000)
    files = {"part_00.gz": gzip.compress(("label,a,b,c\n" + text).encode()), "manifest": b"{}"}
    code, out = run(tmp_path, files)
    assert code == 0
    summary = json.loads((out / "summary" / "summary.json").read_text())
    assert summary["header_rows_dropped"] == ["part_00.gz line 1"]
    splits = summary["splits"]
    assert splits["test"]["rows"] == 750 and splits["validation"]["rows"] == 750 and splits["train"]["rows"] == 3500
    assert {s["positive_rate"] for s in splits.values()} == {0.2}
    shards = sorted((out / "train").iterdir())
    assert [p.name for p in shards] == ["part-00000.csv", "part-00001.csv", "part-00002.csv"]
    first = (out / "test" / "test.csv").read_text()
    code, again = run(tmp_path / "second", files)
    assert (again / "test" / "test.csv").read_text() == first
    assert not list(out.rglob(".*"))  # no temporary files left behind
