"""The suite's modules start longest first, so that on pytest-xdist (``--dist loadscope``: a module's tests stay on
one worker) the long modules do not start last and leave one worker alone on them while the others idle.

Each run records how long each module's tests took (setup, call and teardown, summed) in
``<suite cache>/module-seconds.json``; the next run collects modules in that order, longest first (a module
not measured yet comes first: it may be long). Without the file (a fresh machine) the order is pytest's own.
Only the collection order changes: every test still runs.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import pytest

from tests.suite_cache import suite_cache

RECORD = "module-seconds.json"
WORKER_INPUT = "module_seconds"


def module_of(nodeid: str) -> str:
    """``tests/x/test_y.py`` of ``tests/x/test_y.py::test_z[param]``."""
    return nodeid.split("::", 1)[0]


def longest_first(modules: Iterable[str], seconds: dict[str, float]) -> dict[str, int]:
    """Each module's rank in the order to run them: unmeasured ones first, then by seconds, longest first
    (ties keep the order given)."""
    given = list(dict.fromkeys(modules))
    ordered = sorted(given, key=lambda module: -seconds.get(module, float("inf")))
    return {module: rank for rank, module in enumerate(ordered)}


def merged(earlier: dict[str, float], measured: dict[str, float]) -> dict[str, float]:
    """The record after a run: the modules it measured, at their new times, and the others as they were."""
    return {**earlier, **{module: round(value, 2) for module, value in measured.items()}}


def _read(path: Path) -> dict[str, float]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(k): float(v) for k, v in found.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def pytest_configure(config: pytest.Config) -> None:
    """Register the plugin: the record is read once, by the controller, and handed to the xdist workers, so that
    they all collect the same order even while another run rewrites it."""
    given = getattr(config, "workerinput", {}).get(WORKER_INPUT)
    seconds = given if given is not None else _read(suite_cache() / RECORD)
    config.pluginmanager.register(ModuleClock(suite_cache() / RECORD, seconds), "longest-first-clock")


class ModuleClock:
    """The plugin: orders the collection, sums the reports, writes the record once the run is over."""

    def __init__(self, record: Path, seconds: dict[str, float]):
        self.record = record
        self.seconds = seconds
        self.measured: dict[str, float] = defaultdict(float)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:  # the controller, for each xdist worker
        node.workerinput[WORKER_INPUT] = self.seconds

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        rank = longest_first((module_of(item.nodeid) for item in items), self.seconds)
        items.sort(key=lambda item: rank[module_of(item.nodeid)])  # stable: a module's own order stays

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.measured[module_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(session.config, "workerinput") or not self.measured:  # the controller sees every report
            return
        self.record.parent.mkdir(parents=True, exist_ok=True)
        partial = self.record.with_name(f".{self.record.name}.{os.getpid()}")
        partial.write_text(json.dumps(merged(_read(self.record), self.measured), indent=1, sort_keys=True))
        os.replace(partial, self.record)
