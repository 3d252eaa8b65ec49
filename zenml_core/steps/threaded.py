"""``threaded_map``: Beam's ``Map`` with several elements in flight in threads of a worker.

A data step's elements are row groups, and the work on each (Parquet reads and writes, Arrow
and numpy kernels) mostly releases the GIL: one worker process keeps every core busy instead
of one. Measured on 2 cores, splitting 3M rows in 46 row groups: 1.9 s in one thread, 1.1 s
in 2, 0.94 s in 4.

This module imports Beam: import it inside the functions that build a job.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows
from apache_beam.typehints.decorators import no_annotations

from zenml_core.backends.local import usable_cores


def threaded_map(fn: Callable[..., Any], *side_inputs: Any) -> beam.ParDo:
    """``beam.Map(fn, *side_inputs)``, its elements run by ``threads()`` threads at once. The
    outputs' order is not the inputs' (neither is Beam's); ``fn`` must be safe to run in
    threads, as a DoFn's work on independent files is."""
    return beam.ParDo(_ThreadedMap(fn), *side_inputs)


def threads() -> int:
    """Twice the cores this process may use: while one thread waits on a file, another
    computes (4 threads measured faster than 2 on 2 cores)."""
    return 2 * usable_cores()


class _ThreadedMap(beam.DoFn):  # type: ignore[misc]
    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def setup(self) -> None:
        self.limit = threads()
        self.pool = ThreadPoolExecutor(self.limit, thread_name_prefix="zenml-map")

    def start_bundle(self) -> None:
        self.pending: deque[Future[Any]] = deque()

    @no_annotations  # type: ignore[untyped-decorator]  # Beam would check fn's elements against Any
    def process(self, element: Any, *side_inputs: Any) -> Iterator[Any]:
        self.pending.append(self.pool.submit(self.fn, element, *side_inputs))
        # memory holds at most `limit` elements in flight, however large the bundle
        while len(self.pending) >= self.limit:
            yield self._oldest()

    def finish_bundle(self) -> Iterator[Any]:
        while self.pending:
            yield GlobalWindows.windowed_value(self._oldest())

    def _oldest(self) -> Any:
        try:
            return self.pending.popleft().result()
        except BaseException:
            for future in self.pending:  # the bundle fails: the rest need not run
                future.cancel()
            self.pending.clear()
            raise

    def teardown(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
