"""The one archive extractor: hostile members are refused with the archive and member named, nothing lands outside."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from processing.archives import ArchiveError, extract


def archive(path: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_member(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, None


def tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_files_folders_and_inside_links_are_extracted(tmp_path):
    source = archive(tmp_path / "model.tar.gz", special("./", tarfile.DIRTYPE), file_member("./xgboost-model", b"m"),
                     file_member("code/run.sh", b"#!/bin/sh\n", 0o4755), special("code/link", tarfile.SYMTYPE, "run.sh"),
                     special("copy", tarfile.LNKTYPE, "xgboost-model"))
    target = tmp_path / "out"
    assert extract(source, target) == ["xgboost-model", "code/run.sh", "copy"]
    assert (target / "copy").read_bytes() == b"m" and (target / "code/link").read_bytes() == b"#!/bin/sh\n"
    assert oct((target / "code/run.sh").stat().st_mode & 0o7777) == "0o755"  # setuid dropped, exec kept


@pytest.mark.parametrize("members, message", [
    ([file_member("/tmp/abs-escape")], "member '/tmp/abs-escape' has an absolute"),
    ([file_member("a/../../escape")], "member 'a/../../escape' has a '..' segment"),
    ([special("up", tarfile.SYMTYPE, "../")], "member 'up' is a link to '../', outside"),
    ([special("abs", tarfile.SYMTYPE, "/etc")], "member 'abs' is a link to '/etc', outside"),
    ([special("here", tarfile.SYMTYPE, "."), special("out", tarfile.SYMTYPE, "here/..")], "member 'out' is a link to 'here/..', which leads outside"),
    ([special("dev", tarfile.CHRTYPE)], "member 'dev' is a device"),
    ([special("fifo", tarfile.FIFOTYPE)], "member 'fifo' is a device, FIFO"),
    ([special("hard", tarfile.LNKTYPE, "/etc/passwd")], "member 'hard' is a hard link to '/etc/passwd'"),
])
def test_a_member_that_would_leave_the_folder_is_refused_by_name(tmp_path, members, message):
    source = archive(tmp_path / "model.tar.gz", *members)
    target = tmp_path / "sandbox" / "out"
    with pytest.raises(ArchiveError, match="model.tar.gz: " + message.replace("(", r"\(").replace(".", r"\.")):
        extract(source, target)
    assert tree(tmp_path / "sandbox") == ["out"] + [f"out/{n}" for n in tree(target)]
    assert not Path("/tmp/abs-escape").exists()


def test_writing_through_a_link_extracted_earlier_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    source = archive(tmp_path / "m.tar", special("sub", tarfile.SYMTYPE, "."), file_member("sub/f"))
    extract(source, tmp_path / "ok")  # a link to its own folder is inside
    assert (tmp_path / "ok" / "f").read_bytes() == b"x"
    (tmp_path / "t").mkdir()
    os.symlink(outside, tmp_path / "t" / "pre")  # a link already in the target
    with pytest.raises(ArchiveError, match="member 'pre/f' would be written through a link"):
        extract(archive(tmp_path / "n.tar", file_member("pre/f")), tmp_path / "t")
    assert list(outside.iterdir()) == []


def test_member_count_and_total_size_are_capped(tmp_path):
    many = archive(tmp_path / "many.tar.gz", *[file_member(f"f{i}") for i in range(5)])
    with pytest.raises(ArchiveError, match="many.tar.gz: more than 4 members"):
        extract(many, tmp_path / "a", max_members=4)
    big = archive(tmp_path / "big.tar.gz", file_member("a", b"1" * 600), file_member("b", b"2" * 600))
    with pytest.raises(ArchiveError, match="big.tar.gz: member 'b' takes the files past 1000 bytes"):
        extract(big, tmp_path / "b", max_total_bytes=1000)


@pytest.mark.parametrize("content", [b"not an archive", b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"garbage-deflate" * 10])
def test_an_unreadable_archive_is_one_error_naming_it(tmp_path, content):
    (tmp_path / "model.tar.gz").write_bytes(content)
    with pytest.raises(ArchiveError, match="model.tar.gz is not a readable tar archive"):
        extract(tmp_path / "model.tar.gz", tmp_path / "out")
