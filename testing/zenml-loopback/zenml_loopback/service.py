"""What every emulated service shares: a server on 127.0.0.1 driven by an asyncio loop in a
background thread, state touched only from that loop, and workloads it must never leave
running."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, Self, TypeVar

from zenml_core.testing.processes import free_port
from zenml_loopback.workloads import Running

T = TypeVar("T")


class LoopbackService(abc.ABC):
    """``with Service(...) as service:`` serving at ``service.url`` until the block ends."""

    #: for thread names and error messages
    title = "loopback service"

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workloads: list[Running] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @abc.abstractmethod
    def serving(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Start serving on ``self.port`` (inside the loop); stop when the context exits."""

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._serve, name=self.title, daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None or not self._ready.is_set():
            raise RuntimeError(f"the {self.title} did not start: {self._error}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30)
        for running in self.workloads:  # never leave a container or a process behind
            running.kill()

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported to __enter__
            self._error = error
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self.serving():
            self._ready.set()
            await self._stop.wait()

    def call(self, function: Callable[[], T]) -> T:
        """Run ``function`` in the service's loop (its state is only touched there)."""
        assert self._loop is not None

        async def wrapper() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout=30)


@contextlib.asynccontextmanager
async def background(task: asyncio.Task[Any]) -> AsyncIterator[None]:
    """Keep a controller task running for the block; cancel it after."""
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
