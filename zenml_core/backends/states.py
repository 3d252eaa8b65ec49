"""The states a run and its steps go through, as recorded in the metadata store and shown."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """One vocabulary for runs and steps. Members are strings, so ``state == "completed"``
    holds and the metadata store records the plain value."""

    #: a run or a step under way
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    #: a step whose outputs were reused from an earlier execution
    CACHED = "cached"
    #: a step not run because a step it depends on failed
    SKIPPED = "skipped"
    #: a run handed to a remote backend that was asked not to wait for it
    SUBMITTED = "submitted"

    @property
    def ended(self) -> bool:
        return self in (State.COMPLETED, State.FAILED, State.CACHED, State.SKIPPED)
