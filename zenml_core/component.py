"""BaseComponent: what every pluggable part shares, above all its serialisable config.

Every component (backend or store) is a dataclass whose fields are its parameters. A component
round-trips through a plain config ``{"kind": ..., "name": ..., "params": {...}}``: the same
dict goes into YAML files and into the run spec, and ``from_config`` turns it back into the
object through the plugin registry, so a name in YAML and a class in Python are one thing.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from zenml_core.exceptions import ConfigError

C = TypeVar("C", bound="BaseComponent")


def secret_field(default: str | None = None) -> Any:
    """A parameter that never leaves the process: not in configs, specs, reprs or metadata.

    The component must be able to find it again where it runs (e.g. from an environment
    variable the orchestrator fills from its own secret store).
    """
    return dataclasses.field(default=default, repr=False, metadata={"secret": True})


class BaseComponent:
    """A configurable, pluggable part of zenml-core. Subclasses are dataclasses."""

    #: The registry kind ("orchestrator", "processing", ...); set by the kind base classes.
    KIND: ClassVar[str] = ""

    def __post_init__(self) -> None:
        _check_param_types(self)
        self.validate()

    def validate(self) -> None:
        """Check parameters without touching anything remote; raise ``ConfigError`` if bad.

        Runs on construction, so a mistake is caught before any resource exists.
        """

    def secret_environment(self) -> dict[str, str]:
        """Environment variables through which a process elsewhere finds this component's
        secrets (the counterpart of leaving them out of its config)."""
        return {}

    # -- config round trip -------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """This component's parameters as plain JSON-able values; secrets are left out (None),
        so configs, run specs, logs and metadata never hold them."""
        if not dataclasses.is_dataclass(self):
            return {}
        return {
            f.name: None if f.metadata.get("secret") else _plain(getattr(self, f.name))
            for f in dataclasses.fields(self)
        }

    def to_config(self) -> dict[str, Any]:
        """A plain dict that ``from_config`` turns back into an equal component."""
        from zenml_core.plugins import get_plugin_manager

        name = get_plugin_manager().name_of(type(self))
        return {"kind": self.KIND, "name": name, "params": self.params()}

    @classmethod
    def from_config(cls: type[C], config: Mapping[str, Any]) -> C:
        """Build the component a config describes, found by kind and name in the registry."""
        from zenml_core.plugins import get_plugin_manager

        if not isinstance(config, Mapping):
            raise ConfigError(
                f"A component config must be a mapping with 'name' and 'params', "
                f"got {type(config).__name__}: {config!r}"
            )
        unexpected = set(config) - {"kind", "name", "params"}
        if unexpected:
            raise ConfigError(
                f"Unexpected key(s) {sorted(unexpected)} in component config; "
                "the keys are 'kind', 'name' and 'params' (put parameters under 'params')."
            )
        kind = config.get("kind") or cls.KIND
        if not kind:
            raise ConfigError("Component config has no 'kind'; add e.g. kind: orchestrator.")
        if not isinstance(kind, str):
            from zenml_core.kinds import KINDS

            raise ConfigError(f"'kind' must be one of {list(KINDS)}, got {kind!r}.")
        if cls.KIND and kind != cls.KIND:
            raise ConfigError(
                f"Expected a config of kind {cls.KIND!r}, got kind {kind!r}; "
                f"check the 'kind' of {config.get('name')!r}."
            )
        name = config.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"A {kind} config needs a 'name' such as 'local', got {name!r}.")
        params = config.get("params") or {}
        if not isinstance(params, Mapping):
            raise ConfigError(f"'params' of {kind} {name!r} must be a mapping, got {params!r}.")
        component_class = get_plugin_manager().get_class(kind, name)
        if not issubclass(component_class, cls):
            raise ConfigError(
                f"{kind} {name!r} is {component_class.__qualname__}, not a {cls.__qualname__}."
            )
        return component_class.from_params(params)

    @classmethod
    def from_params(cls: type[C], params: Mapping[str, Any]) -> C:
        """Construct from a parameter mapping, naming unknown or missing parameters."""
        fields: dict[str, dataclasses.Field[Any]] = (
            {f.name: f for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else {}
        )
        unknown = sorted(set(params) - set(fields))
        if unknown:
            raise ConfigError(
                f"{cls.__qualname__} has no parameter(s) {unknown}; "
                f"its parameters are {sorted(fields) or 'none'}."
            )
        missing = sorted(
            name
            for name, f in fields.items()
            if name not in params
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        )
        if missing:
            raise ConfigError(f"{cls.__qualname__} needs parameter(s) {missing}.")
        return cls(**params)

    def to_yaml(self) -> str:
        import yaml

        return str(yaml.safe_dump(self.to_config(), sort_keys=False))

    @classmethod
    def from_yaml(cls: type[C], text: str) -> C:
        from zenml_core.yamlio import load_yaml

        return cls.from_config(load_yaml(text, "Component YAML"))


# -- parameter checking --------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


_HINTS_CACHE: dict[type, dict[str, Any]] = {}


def _check_param_types(component: BaseComponent) -> None:
    """Reject values whose type contradicts the field annotation (YAML typos show up here)."""
    if not dataclasses.is_dataclass(component):
        return
    cls = type(component)
    hints = _HINTS_CACHE.get(cls)
    if hints is None:
        hints = typing.get_type_hints(cls)
        _HINTS_CACHE[cls] = hints
    for f in dataclasses.fields(component):
        value = getattr(component, f.name)
        expected = hints.get(f.name, Any)
        if not _matches(value, expected):
            raise ConfigError(
                f"{cls.__qualname__}: parameter {f.name!r} must be {_describe(expected)}, "
                f"got {type(value).__name__} {value!r}."
            )


def _matches(value: Any, expected: Any) -> bool:
    if expected is Any or expected is typing.Any:
        return True
    origin = typing.get_origin(expected)
    args = typing.get_args(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if expected is type(None):
        return value is None
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple) or expected in (list, tuple):
        if not isinstance(value, list | tuple):
            return False
        if origin is list and args:
            return all(_matches(v, args[0]) for v in value)
        if origin is tuple and args:
            if len(args) == 2 and args[1] is Ellipsis:
                return all(_matches(v, args[0]) for v in value)
            return len(args) == len(value) and all(map(_matches, value, args))
        return True
    if origin is dict or expected is dict:
        if not isinstance(value, dict):
            return False
        if args:
            return all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
        return True
    if isinstance(expected, type):
        return isinstance(value, expected)
    return True  # an annotation we do not interpret is the component's own business


def _describe(expected: Any) -> str:
    if isinstance(expected, type):
        return expected.__name__
    return str(expected).replace("typing.", "")
