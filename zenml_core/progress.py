"""A run's progress, one look everywhere: a line per step event (started, done, cached,
failed, skipped) and, inside long steps, how far they are (rows through a Beam job, epochs of
the trainer) — a live bar on a terminal (rich), a line every few seconds in a log or a pipe.

Steps report through their context (``ctx.progress(done, total, "epochs")`` or
``ctx.count(rows, "rows")``); what a step's Beam workers report reaches the printer only when
they run in the step's own process (the default in-memory runner) and is dropped elsewhere.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

Progress = Callable[[str, str, str], None]
#: event -> how it reads in a line
MARKS = {"start": "run", "completed": "done", "cached": "cached", "failed": "FAILED",
         "skipped": "skipped", "progress": "..."}  # fmt: skip
#: at most one progress line per step this often, where there is no terminal
LINE_EVERY_S = 5.0

_bound: dict[tuple[str, str], Progress] = {}
_counts: dict[tuple[str, str, str], int] = {}
_lock = threading.Lock()


@contextlib.contextmanager
def bound(run_id: str, step: str, progress: Progress) -> Iterator[None]:
    """While a step runs in this process, what it reports goes to ``progress``."""
    with _lock:
        _bound[(run_id, step)] = progress
    try:
        yield
    finally:
        with _lock:
            _bound.pop((run_id, step), None)
            for key in [k for k in _counts if k[:2] == (run_id, step)]:
                del _counts[key]


def update(run_id: str, step: str, done: int, total: int | None = None, unit: str = "",
           note: str = "") -> None:  # fmt: skip
    """Say how far the step is; nothing happens where no printer is bound (a Beam worker)."""
    progress = _bound.get((run_id, step))
    if progress is None:
        return
    amount = f"{done:,}/{total:,}" if total else f"{done:,}"
    progress("progress", step, " ".join(p for p in (amount, unit, note) if p))


def count(run_id: str, step: str, amount: int, unit: str = "rows") -> None:
    """Add ``amount`` to the step's running count of ``unit`` and say the total."""
    if (run_id, step) not in _bound:
        return
    with _lock:
        key = (run_id, step, unit)
        _counts[key] = total = _counts.get(key, 0) + amount
    update(run_id, step, total, unit=unit)


class Printer:
    """The progress callback ``zenml run`` and the examples use."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._bars: Any = None
        self._tasks: dict[str, Any] = {}
        self._last_line: dict[str, float] = {}
        self._held: dict[str, str] = {}  # a step's last progress not shown yet
        self._lock = threading.Lock()

    def __call__(self, event: str, step: str, detail: str) -> None:
        with self._lock:
            if event == "progress":
                self._progress(step, detail)
                return
            self._end_bar(step)
            held = self._held.pop(step, None)
            if held is not None:  # where it got to, before it ended
                self._line(f"  [{MARKS['progress']:>7}] {step:<28} {held}")
            self._line(f"  [{MARKS.get(event, event):>7}] {step:<28} {detail}")

    def _line(self, text: str) -> None:
        if self._bars is not None:
            self._bars.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    def _progress(self, step: str, detail: str) -> None:
        if not self.live:
            now = time.monotonic()
            if now - self._last_line.get(step, 0.0) >= LINE_EVERY_S:
                self._last_line[step] = now
                self._held.pop(step, None)
                self._line(f"  [{MARKS['progress']:>7}] {step:<28} {detail}")
            else:
                self._held[step] = detail
            return
        from rich.console import Console
        from rich.progress import Progress as Bars
        from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

        if self._bars is None:
            self._bars = Bars(SpinnerColumn(), TextColumn("{task.description}"),
                              TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                              console=Console(file=self.stream), transient=True)  # fmt: skip
            self._bars.start()
        if step not in self._tasks:
            self._tasks[step] = self._bars.add_task(f"  {step:<28}", detail=detail)
        self._bars.update(self._tasks[step], detail=detail)

    def _end_bar(self, step: str) -> None:
        task = self._tasks.pop(step, None)
        if task is not None and self._bars is not None:
            self._bars.remove_task(task)
            if not self._tasks:
                self._bars.stop()
                self._bars = None
