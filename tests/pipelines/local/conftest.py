"""Fixtures shared by the local engine's tests: a sentinel folder for the hostile ones, a package index on loopback."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.package_index_server import serving


@pytest.fixture
def sentinel(tmp_path: Path):
    """A folder beside the store; the test asserts at the end that it is exactly as it was (and non-empty)."""
    outside = tmp_path / "outside"
    (outside / "victim").mkdir(parents=True)
    (outside / "victim" / "keep.txt").write_text("precious")
    (outside / "data.csv").write_text("1,2,3\n")

    def snapshot() -> dict[str, str]:
        return {p.relative_to(outside).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
                for p in sorted(outside.rglob("*"))}

    before = snapshot()
    assert len(before) == 3
    yield outside
    assert snapshot() == before, "something outside the store was changed"


@pytest.fixture
def package_index(tmp_path: Path):
    """An index on loopback serving ``tinypkg``, ``otherpkg`` and ``thirdpkg`` (``VALUE`` 1, 2 and 3)."""
    (tmp_path / "wheels").mkdir()
    with serving(tmp_path / "wheels") as served:
        for value, name in enumerate(("tinypkg", "otherpkg", "thirdpkg"), start=1):
            served.add(name, code=f"VALUE = {value}\n")
        yield served
