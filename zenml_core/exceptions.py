"""Every error zenml-core raises on purpose; each message names the problem and the fix."""

from __future__ import annotations


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
