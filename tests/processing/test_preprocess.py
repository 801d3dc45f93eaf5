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


def test_the_split_is_exact_per_class_spread_over_the_input_and_seeded(tmp_path, monkeypatch):
    monkeypatch.setattr(preprocess, "SPLIT_BLOCK_BYTES", 1 << 15)  # the quotas hold across many blocks
    files = {"leads.csv": "".join(f"{int(i % 4 == 0)},{i}\n" for i in range(40_000)).encode()}
    splits = {}
    for seed in ("1", "2"):
        code, out = run(tmp_path / seed, files, "--seed", seed)
        assert code == 0
        splits[seed] = {name: [int(line.split(",")[1]) for path in sorted((out / name).iterdir())
                               for line in path.read_text().splitlines()] for name in ("train", "validation", "test")}
    test = splits["1"]["test"]
    assert len(test) == 6000 and sum(i % 4 == 0 for i in test) == 1500  # 15% of each class, exactly
    assert sorted(sum(splits["1"].values(), [])) == list(range(40_000))  # every row once
    assert sum(i < 20_000 for i in test) / len(test) == pytest.approx(0.5, abs=0.03)  # drawn from the whole input
    assert set(test) != set(splits["2"]["test"])
    code, again = run(tmp_path / "again", files, "--seed", "1")
    assert (again / "test" / "test.csv").read_bytes() == (tmp_path / "1" / "out" / "test" / "test.csv").read_bytes()


@pytest.mark.parametrize("data, message", [
    (gzip.compress(good_rows(2000).encode())[:-200], "leads.csv.gz: not a readable gzip file"),
    (b"\x1f\x8b" + b"junk that is not deflate data" * 4, "leads.csv.gz: not a readable gzip file"),
])
def test_damaged_gzip_names_the_file_without_a_traceback(tmp_path, capsys, data, message):
    code, out = run(tmp_path, {"leads.csv.gz": data})
    err = capsys.readouterr().err
    assert code == 1
    assert message in err and "Traceback" not in err
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))


def test_truncated_gzip_says_how_far_it_got(tmp_path, capsys):
    code, _ = run(tmp_path, {"leads.csv.gz": gzip.compress(good_rows(5000).encode())[:-500]})
    err = capsys.readouterr().err
    line_reached = int(err.rsplit("after line ", 1)[1].split()[0])
    assert code == 1 and 1000 < line_reached < 5000


def test_value_outside_float32_range_is_refused_with_file_and_line(tmp_path, capsys):
    code, _ = run(tmp_path, {"leads.csv": (good_rows(8) + "1,1e39,2,\n").encode()})
    assert code == 1
    assert 'leads.csv line 9: column 2 is outside float32\'s range' in capsys.readouterr().err
    code, _ = run(tmp_path / "ok", {"leads.csv": (good_rows(8) + "1,3e38,2,\n").encode()})
    assert code == 0


def test_byte_order_mark_is_accepted(tmp_path):
    code, out = run(tmp_path, {"leads.csv": b"\xef\xbb\xbf" + good_rows(50).encode()})
    assert code == 0
    assert json.loads((out / "summary" / "summary.json").read_text())["rows_written"] == 50


def test_duplicate_and_skipped_files_are_reported(tmp_path, capsys):
    rows = good_rows(50).encode()
    code, out = run(tmp_path, {"0000_part_00": rows, "0001_part_00": rows, "copy.gz": gzip.compress(rows),
                               "manifest": b"{}", ".DS_Store": b"x"})
    err = capsys.readouterr().err
    summary = json.loads((out / "summary" / "summary.json").read_text())
    assert code == 0
    assert "skipped 2 files that are not data" in err
    assert sorted(summary["skipped_files"]) == [".DS_Store", "manifest"]
    assert {d["file"] for d in summary["duplicate_files"]} == {"0001_part_00", "copy.gz"}
    assert all(d["same_content_as"] == "0000_part_00" for d in summary["duplicate_files"])
    assert "0001_part_00" in err and "same content" in err


def tricky_rows(count: int) -> bytes:
    """Plain rows with, here and there, what only the line-by-line path accepts: CRLF, spaces, other label
    spellings, NaN tokens, exponents; no newline after the last line."""
    lines = []
    for i in range(count):
        label = "1" if i % 7 == 0 else "0"
        row = f"{label},{i % 13},{i * 0.5:g},,{-i}"
        if i % 9001 == 0:
            row = f"true, {i} ,1e3,NaN,{i}"
        lines.append(row + ("\r\n" if i % 5003 == 0 else "\n"))
    return "".join(lines).rstrip("\n").encode()


def test_both_block_fast_paths_write_exactly_what_the_line_path_writes(tmp_path, monkeypatch):
    import sys

    files = {"a.csv": tricky_rows(45_000), "b.csv": tricky_rows(3)}
    monkeypatch.setattr(preprocess, "BLOCK_BYTES", 1 << 14)  # many blocks: most plain, some not
    spooled = []
    plain = preprocess.Spool.spool_plain_block
    monkeypatch.setattr(preprocess.Spool, "spool_plain_block", lambda self, block: spooled.append(plain(self, block))
                        or spooled[-1])
    code, with_pandas = run(tmp_path / "pandas", files, "--bad-rows", "skip")
    assert code == 0
    assert spooled.count(True) > 10 and spooled.count(False) > 3  # both paths were taken
    monkeypatch.setitem(sys.modules, "pandas", None)  # an image without pandas: the per-line expression
    code, with_regex = run(tmp_path / "regex", files, "--bad-rows", "skip")
    assert code == 0
    monkeypatch.setattr(preprocess, "plain_rows_pattern", lambda width, delimiter: None)
    code, slow = run(tmp_path / "slow", files, "--bad-rows", "skip")
    assert code == 0
    for path in sorted(p for p in slow.rglob("*") if p.is_file()):
        relative = path.relative_to(slow)
        assert path.read_bytes() == (with_pandas / relative).read_bytes() == (with_regex / relative).read_bytes(), path


def test_a_bad_row_deep_in_a_block_is_named_by_its_line(tmp_path, capsys, monkeypatch):
    rows = good_rows(30_000).splitlines()
    rows[25_432] = "1,2,oops,4"
    monkeypatch.setattr(preprocess, "BLOCK_BYTES", 1 << 14)
    code, _ = run(tmp_path, {"big.csv": ("\n".join(rows) + "\n").encode()})
    assert code == 1
    assert 'big.csv line 25433: column 3 is not a number: "oops"' in capsys.readouterr().err


def test_blocks_hold_whole_lines_numbered_from_their_first_even_past_the_block_size(tmp_path, monkeypatch):
    monkeypatch.setattr(preprocess, "BLOCK_BYTES", 64)
    lines = [b"1,2\n", b"1," + b"5" * 1000 + b"\n"] + [b"0,%d\n" % i for i in range(40)] + [b"1,9"]
    (tmp_path / "f.csv").write_bytes(b"".join(lines))
    blocks = list(preprocess.read_blocks(str(tmp_path / "f.csv"), "f.csv"))
    assert blocks[0] == (1, b"1,2\n") and b"".join(block for _, block in blocks) == b"".join(lines)
    for number, block in blocks[1:]:
        assert block.split(b"\n")[0] + b"\n" == lines[number - 1] or block == lines[number - 1]  # starts at its line
        assert block.endswith(b"\n") or block is blocks[-1][1]
    assert len(blocks) > 3  # several blocks; the 1000-byte line whole in one of them
