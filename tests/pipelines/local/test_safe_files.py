"""The store's door to its own files: links and special files are refused, never followed or waited on."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

from pipelines.errors import UnsafePathError
from pipelines.local import safe_files


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    (root / "executions" / "abc").mkdir(parents=True)
    (root / "executions" / "abc" / "execution.json").write_text("{}")
    return root


def finishes(call, seconds: float = 10.0):
    """What ``call()`` returns or raises, asserting it does not block (a FIFO opened for reading would)."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the call blocked"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def test_a_plain_record_reads_and_writes_atomically(store):
    path = store / "executions" / "abc" / "execution.json"
    safe_files.write_text(store, path, "new")
    assert safe_files.read_text(store, path) == "new"
    assert [name for name, _ in safe_files.entries(store, path.parent)] == ["execution.json"]  # no temporary left


def test_a_link_where_a_record_is_is_refused_naming_it(store, sentinel):
    path = store / "executions" / "abc" / "execution.json"
    path.unlink()
    path.symlink_to(sentinel / "victim" / "keep.txt")
    with pytest.raises(UnsafePathError, match=r"executions/abc/execution.json is a symbolic link"):
        safe_files.read_bytes(store, path)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        safe_files.open_append(store, path)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        safe_files.open_lock(store, path)
    safe_files.write_text(store, path, "replaced")  # a write replaces the link itself, never writes through it
    assert not path.is_symlink() and path.read_text() == "replaced"


@pytest.mark.parametrize("link_at", ["executions", "executions/abc"])
def test_a_link_on_the_way_is_refused_and_nothing_outside_is_touched(store, sentinel, link_at):
    planted = store / link_at
    os.rename(planted, store / "moved")
    planted.symlink_to(sentinel)
    target = store / "executions" / "abc" / "victim" / "keep.txt"
    for call in (lambda: safe_files.read_bytes(store, target), lambda: safe_files.write_text(store, target, "x"),
                 lambda: safe_files.open_lock(store, target.parent / ".lock"),
                 lambda: safe_files.open_append(store, target), lambda: safe_files.make_folders(store, target.parent),
                 lambda: safe_files.remove_tree(store, target.parent), lambda: safe_files.remove(store, target),
                 lambda: safe_files.entries(store, target.parent), lambda: safe_files.kind(store, target)):
        with pytest.raises(UnsafePathError, match=f"{link_at} is a symbolic link"):
            call()


@pytest.mark.parametrize("opening", ["read", "append", "lock", "kind"])
def test_a_fifo_where_a_file_should_be_is_refused_at_once(store, opening):
    fifo = store / "executions" / "abc" / "engine.log"
    os.mkfifo(fifo)
    calls = {"read": lambda: safe_files.read_bytes(store, fifo), "append": lambda: safe_files.open_append(store, fifo),
             "lock": lambda: safe_files.open_lock(store, fifo), "kind": lambda: safe_files.kind(store, fifo)}
    if opening == "kind":
        assert finishes(calls[opening]) == "other"
        return
    with pytest.raises(UnsafePathError, match="engine.log is .*not a regular file"):
        finishes(calls[opening])


@pytest.mark.parametrize("path", ["../outside/file", "executions/../../outside", "/etc/passwd"])
def test_paths_that_leave_the_root_are_refused(store, path):
    with pytest.raises(UnsafePathError, match="is not inside the local store"):
        safe_files.read_bytes(store, store / path if not path.startswith("/") else Path(path))


def test_remove_tree_unlinks_links_inside_without_following_them(store, sentinel):
    job = store / "jobs" / "abc" / "Train"
    job.mkdir(parents=True)
    (job / "leak").symlink_to(sentinel / "victim")
    (job / "file").write_text("x")
    safe_files.remove_tree(store, job)
    assert not job.exists() and (sentinel / "victim" / "keep.txt").is_file()


def test_a_lock_file_locks(store):
    first = safe_files.open_lock(store, store / "executions" / "abc" / ".lock")
    second = safe_files.open_lock(store, store / "executions" / "abc" / ".lock")
    try:
        fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(BlockingIOError):
            fcntl.flock(second, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(first)
        os.close(second)


def test_entries_name_links_and_special_files_as_other(store, sentinel):
    folder = store / "executions"
    (folder / "linked").symlink_to(sentinel)
    os.mkfifo(folder / "fifo")
    assert safe_files.entries(store, folder) == [("abc", "folder"), ("fifo", "other"), ("linked", "other")]
    assert safe_files.entries(store, store / "missing") == []
