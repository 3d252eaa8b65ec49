"""Every error zenml-core raises on purpose; each message names the problem and the fix."""

from __future__ import annotations

from typing import Any


class ZenMLError(Exception):
    """Base of all deliberate zenml-core errors."""


class ConfigError(ZenMLError, ValueError):
    """A backend or store was given parameters it cannot work with."""


class PluginError(ZenMLError):
    """Something is wrong with an installed plugin distribution."""


class PluginLoadError(PluginError):
    """A plugin failed to import, had a bad hook, or raised inside a hook."""


class PluginConflictError(PluginError):
    """Two plugins registered the same backend name for the same kind."""


class IncompatiblePluginError(PluginError):
    """A plugin declares a zenml-core range that excludes the running core."""


class UnknownBackendError(ZenMLError, LookupError):
    """No plugin provides the requested backend name."""


class ArtifactStoreError(ZenMLError):
    """An artifact could not be published or read."""


class MetadataStoreError(ZenMLError):
    """The metadata store could not be reached or refused a request."""


class PipelineError(ZenMLError, ValueError):
    """A pipeline is malformed: unknown steps or inputs, a cycle, a bad spec."""


class BeamJobError(ZenMLError):
    """A data step's Beam job did not end DONE (failed, cancelled, stuck, refused)."""


class StepFailedError(ZenMLError):
    """A step raised; the run is recorded as failed and can be resumed.

    ``result`` holds the run's ``RunResult`` (completed steps and their outputs) when known.
    """

    result: Any = None

    def with_result(self, result: Any) -> StepFailedError:
        self.result = result
        return self


class DataWarning(UserWarning):
    """Data that is probably not what its user meant (a stray word in a numeric column):
    shown, not fatal, unless the step is asked to be strict."""
