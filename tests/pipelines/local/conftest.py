"""Fixtures shared by the local engine's hostile tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest


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
