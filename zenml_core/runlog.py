"""A run's log: what the libraries under a run say that is not the user's business (Google's
"Python 3.11 reaches its end of life" FutureWarning, Beam's "apitools not found") goes to
``<project>/.zenml/logs/<run id>.log`` instead of the run's output. Warnings and log records
from the user's own code, and errors from anywhere, are shown as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: libraries whose warnings and sub-error log records are kept in the log only
FOREIGN = ("google", "apache_beam", "absl", "tensorflow", "keras", "grpc", "urllib3")
_SITE = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")

_lock = threading.Lock()


def log_path(run_id: str) -> Path:
    from zenml_core.repository import home

    return home() / "logs" / f"{run_id}.log"


def foreign(path: str) -> bool:
    """Whether a source file belongs to one of ``FOREIGN``'s installed packages."""
    for site in _SITE:
        if site in path:
            top = path.split(site, 1)[1].split(os.sep, 1)[0]
            return top in FOREIGN
    return False


class _ToLog(logging.Filter):
    def __init__(self, write: Any) -> None:
        super().__init__()
        self.write = write

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR and foreign(record.pathname):
            self.write(f"{record.levelname} {record.name}: {record.getMessage()}")
            return False
        return True


@contextlib.contextmanager
def quiet_libraries(run_id: str) -> Iterator[Path]:
    """For the block: foreign warnings and log records below ERROR go to the run's log."""
    path = log_path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a", encoding="utf-8")
    write_lock = threading.Lock()

    def write(line: str) -> None:
        with write_lock:
            handle.write(line.rstrip() + "\n")
            handle.flush()

    shown = warnings.showwarning

    def showwarning(message: Any, category: Any, filename: str, lineno: int,
                    file: Any = None, line: Any = None) -> None:  # fmt: skip
        if foreign(filename):
            write(f"{category.__name__} {filename}:{lineno}: {message}")
        else:
            shown(message, category, filename, lineno, file, line)

    keeper = _ToLog(write)
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in FOREIGN)]
    with _lock:
        warnings.showwarning = showwarning
        for logger in loggers:
            logger.addFilter(keeper)
    try:
        yield path
    finally:
        with _lock:
            for logger in loggers:
                logger.removeFilter(keeper)
            if warnings.showwarning is showwarning:
                warnings.showwarning = shown
        handle.close()
