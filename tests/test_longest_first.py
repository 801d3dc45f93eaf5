"""The suite's own scheduling: modules longest first by the last run's record, which each run updates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.longest_first import RECORD, longest_first, merged, module_of

REPO = Path(__file__).resolve().parents[1]


def test_unmeasured_modules_come_first_then_the_longest_and_ties_keep_their_order() -> None:
    modules = ["a.py", "b.py", "c.py", "d.py", "e.py"]
    rank = longest_first(modules, {"a.py": 1.0, "b.py": 30.0, "d.py": 1.0, "e.py": 5.0})
    assert sorted(modules, key=rank.get) == ["c.py", "b.py", "e.py", "a.py", "d.py"]
    assert module_of("tests/x/test_y.py::test_z[a::b]") == "tests/x/test_y.py"


def test_a_run_keeps_the_times_of_modules_it_did_not_run() -> None:
    assert merged({"a.py": 3.0, "b.py": 4.0}, {"b.py": 1.234, "c.py": 2.0}) == {"a.py": 3.0, "b.py": 1.23, "c.py": 2.0}


def test_a_run_records_its_modules_and_the_next_one_collects_the_longest_first(tmp_path) -> None:
    (tmp_path / "test_a_quick.py").write_text("def test_quick():\n    pass\n")
    (tmp_path / "test_b_slow.py").write_text("import time\n\n\ndef test_slow():\n    time.sleep(0.5)\n")
    environment = {**os.environ, "PIPELINES_TEST_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}

    def pytest(*arguments: str) -> str:
        done = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.longest_first", "-p", "no:cacheprovider",
                               "-q", *arguments], cwd=tmp_path, env=environment, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert pytest("--collect-only").splitlines()[:2] == ["test_a_quick.py::test_quick", "test_b_slow.py::test_slow"]
    pytest()
    seconds = json.loads((tmp_path / "cache" / RECORD).read_text())
    assert seconds["test_b_slow.py"] >= 0.5 > seconds["test_a_quick.py"]
    assert pytest("--collect-only").splitlines()[:2] == ["test_b_slow.py::test_slow", "test_a_quick.py::test_quick"]
