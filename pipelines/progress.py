"""One progress display for both targets: a live rich table on a terminal, plain lines otherwise.

On a terminal the table lists every step of the definition from the start (Pending until it runs),
ticks the elapsed time of running steps, and shows each step's latest log line in its row; job log
lines do not scroll the table away (they are kept whole in each job's log file). Without a terminal,
each change and each log line is one line, as a log collector wants them.
"""

from __future__ import annotations

import sys
import threading
from typing import IO

from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pipelines.results import StepStatus

_STYLES = {"Succeeded": "green", "Failed": "red", "Stopped": "yellow", "Executing": "cyan", "Starting": "cyan",
           "Pending": "dim", "Not taken": "dim", "Not run": "dim"}
# the statuses of a step that has not started: waiting, in a condition branch not taken, or after a failure
NOT_STARTED = ("Pending", "Not taken", "Not run")
LATEST_WIDTH = 60  # the Latest column at most; on a narrow terminal it gives way to the others


def readable(line: str) -> str:
    """A job log line for display: ``#011``, the syslog escape XGBoost's container writes for a tab, as a tab
    (the job's log file keeps the line as CloudWatch shows it)."""
    return line.replace("#011", "\t")


def _elapsed(step: StepStatus) -> str:
    seconds = step.duration_seconds
    return "" if seconds is None else f"{seconds:6.1f}s"


def _line(step: StepStatus) -> str:
    parts = [f"{step.name}: {step.status}"]
    if step.duration_seconds is not None and step.end_time is not None:
        parts.append(f"in {step.duration_seconds:.1f}s")
    if step.cache_hit_from:
        parts.append(f"(cache hit from execution {step.cache_hit_from})")
    if step.reused_from:
        parts.append(f"(not selected: reused from execution {step.reused_from})")
    if step.attempts > 1:
        parts.append(f"(attempt {step.attempts})")
    if step.failure_reason:
        parts.append(f"- {step.failure_reason}")
    return " ".join(parts)


class Progress:
    """Receives step snapshots and shows them; use as a context manager around a run."""

    def __init__(self, title: str, stream: IO[str] | None = None, live: bool | None = None):
        self.title = title
        self.stream = stream or sys.stdout
        self.console = Console(file=self.stream)
        self.live_mode = self.console.is_terminal if live is None else live
        self._live: Live | None = None
        self._seen: dict[str, tuple[str, int]] = {}
        self._steps: dict[str, StepStatus] = {}
        self._latest: dict[str, str] = {}
        self._message: str | None = None
        self._writing = threading.Lock()

    def _print(self, line: str) -> None:
        """One whole line in one write: parallel steps' lines never interleave mid-line (plain output)."""
        with self._writing:
            self.stream.write(line + "\n")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        if self.live_mode:  # redrawn 4 times a second, so running steps' elapsed times tick
            self._live = Live(console=self.console, refresh_per_second=4, transient=False, get_renderable=self._table)
            self._live.__enter__()
        return self

    def declare(self, names: list[str]) -> None:
        """The steps the run may execute, in definition order: shown as Pending until they start."""
        for name in names:
            self._steps.setdefault(name, StepStatus(name, "Pending"))

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(None, None, None)
            self._live = None

    def update(self, steps: list[StepStatus], message: str | None = None) -> None:
        """Show the current state of every step (and an optional execution-level message)."""
        for step in steps:
            self._steps[step.name] = step
        if message and message != self._message:
            self._message = message
            if self._live is not None:  # a plain line above the table, as it would be without a terminal
                self._live.console.print(Text(message), soft_wrap=True)
            else:
                self._print(message)
        if self._live is not None:
            self._live.refresh()
            return
        for step in steps:
            if step.status in NOT_STARTED:
                continue
            key = (step.status, step.attempts)
            if self._seen.get(step.name) != key:
                self._seen[step.name] = key
                self._print(_line(step))

    def log(self, step: str, line: str) -> None:
        """One line of a step's job log: the latest shown in the step's row (live), or printed (plain)."""
        if self._live is not None:
            if line.strip():
                self._latest[step] = readable(line).expandtabs(2).strip()
        else:
            self._print(f"  [{step}] {readable(line)}")

    def _table(self) -> Table:
        table = Table(title=self.title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                      collapse_padding=True)
        table.add_column("Step", no_wrap=True, overflow="ellipsis", min_width=8)
        table.add_column("Status", no_wrap=True, min_width=9)
        table.add_column("Elapsed", no_wrap=True, justify="right")
        table.add_column("Attempt", no_wrap=True, justify="right", header_style="")
        table.add_column("Cache", no_wrap=True, overflow="ellipsis", max_width=12)
        rows = [(step.name, step.status, _elapsed(step), "" if step.status in NOT_STARTED else str(step.attempts),
                 step.cache_hit_from or "", step.failure_reason or self._latest.get(step.name, ""))
                for step in self._steps.values()]
        widest = [max([len(column.header), *(len(row[i]) for row in rows)]) for i, column in enumerate(table.columns)]
        widest[-1] = min(widest[-1], 12)  # the Cache column's max_width
        # what the other columns leave of the terminal's width (two characters between columns and at the edges)
        room = self.console.width - sum(widest) - 2 * (len(widest) + 1)
        table.add_column("Latest", width=max(8, min(LATEST_WIDTH, room)), no_wrap=True, overflow="ellipsis")
        for name, status, elapsed, attempt, cache, latest in rows:
            style = _STYLES.get(status, "")
            table.add_row(name, f"[{style}]{status}[/]" if style else status, elapsed, attempt, cache,
                          Text(latest, style="dim"))
        return table
