"""Plugin discovery and the backend registry.

Plugins are found through the ``zenml_core.plugins`` entry-point group, loaded once per process
on first use, and asked through the hooks in ``zenml_core.hookspecs`` which classes they
provide. zenml-core's own local backends come in through the same hooks as a built-in plugin.

Failure policy: a plugin that cannot be imported, has a bad hook, raises inside a hook, or
declares a zenml-core range that excludes this core is *recorded*, shown by ``zenml plugins``,
and raised only when someone asks for a backend it would provide. ``ZENML_STRICT_PLUGINS=1``
makes any such problem fatal at load time (our own CI runs that way).

Environment:
  ZENML_PLUGINS        comma-separated allow-list of plugins (entry-point or distribution names);
                       unset loads every installed plugin, empty loads none but the built-ins.
  ZENML_PLUGINS_BLOCK  comma-separated plugins never to load.
  ZENML_STRICT_PLUGINS 1/true: any plugin problem raises at load time.
  ZENML_PLUGIN_MODULES comma-separated importable modules to load as plugins without an
                       entry point (an application's own backends; tests' child processes).
  ZENML_PLUGIN_IMPORT_LIMIT  seconds a plugin's entry module may take to import (default 1);
                       slower ones, and ones that import a heavy library, are flagged (fatal
                       under ZENML_STRICT_PLUGINS).

Built-in names (``local``, ``file``, ``sqlite``, ``mysql``) belong to zenml-core: a plugin that
registers one is refused for that name (the built-in wins; ``zenml plugins`` shows the refusal).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from zenml_core import hookspecs
from zenml_core._version import __version__ as CORE_VERSION
from zenml_core.component import BaseComponent
from zenml_core.exceptions import (
    ConfigError,
    IncompatiblePluginError,
    PluginConflictError,
    PluginError,
    PluginLoadError,
    UnknownBackendError,
)
from zenml_core.kinds import KINDS

ENV_ALLOW = "ZENML_PLUGINS"
ENV_BLOCK = "ZENML_PLUGINS_BLOCK"
ENV_STRICT = "ZENML_STRICT_PLUGINS"
ENV_MODULES = "ZENML_PLUGIN_MODULES"
ENV_IMPORT_LIMIT = "ZENML_PLUGIN_IMPORT_LIMIT"
#: the variables that choose plugins; a remote run gets them too, so it loads what this did
PLUGIN_ENVIRONMENT = (ENV_ALLOW, ENV_BLOCK, ENV_STRICT, ENV_MODULES, ENV_IMPORT_LIMIT)
DEFAULT_IMPORT_LIMIT_S = 1.0
#: Modules a light import must not pull in: a plugin's entry module, a backend's module, the
#: core itself (checked here, by the conformance suites, the tests and bench/).
HEAVY_MODULES = (
    "tensorflow",
    "keras",
    "apache_beam",
    "google.cloud",
    "kubernetes",
    "ml_metadata",
    "docker",
    "pandas",
    "pyarrow",
)

CORE_DISTRIBUTION = "zenml-core"
BUILTIN_PLUGIN = "builtin"

#: Where the first-party backends live, so an unknown name can say what to install.
FIRST_PARTY: dict[tuple[str, str], str] = {
    ("orchestrator", "gcp"): "zenml-gcp",
    ("orchestrator", "kubernetes"): "zenml-k8s",
    ("processing", "dataflow"): "zenml-dataflow",
    ("processing", "portable"): "zenml-dataflow",
    ("training", "gcaip"): "zenml-gcaip",
    ("training", "gcaip-single-gpu"): "zenml-gcaip",
    ("artifact_store", "gs"): "zenml-gcp",
}

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")

# Plugin states, as shown by `zenml plugins`.
LOADED = "loaded"
FAILED = "failed"
INCOMPATIBLE = "incompatible"
DISABLED = "disabled"


def heavy_among(modules: Iterable[str]) -> list[str]:
    """The entries of ``HEAVY_MODULES`` that ``modules`` (names) import, in its order."""
    names = set(modules)
    return [h for h in HEAVY_MODULES if any(m == h or m.startswith(h + ".") for m in names)]


@dataclass
class PluginInfo:
    """What is known of one plugin: where it came from, what it provides, what went wrong."""

    name: str
    distribution: str | None
    version: str | None
    module: str
    status: str = LOADED
    errors: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    #: kind -> names this plugin provides (none if it failed: see ``attempted``)
    backends: dict[str, list[str]] = field(default_factory=dict)
    #: kind -> names the plugin registered before it failed, or that were refused
    attempted: dict[str, list[str]] = field(default_factory=dict)
    #: registrations refused because the name is zenml-core's own ("orchestrator 'local'")
    refused: list[str] = field(default_factory=list)
    #: how long its entry module took to import, and the heavy modules that import pulled in
    import_seconds: float | None = None
    heavy_imports: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """'zenml-k8s 0.1.0 (plugin k8s)', for messages."""
        dist = f"{self.distribution} {self.version}" if self.distribution else "no distribution"
        return f"{dist} (plugin {self.name!r})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "status": self.status,
            "backends": {kind: sorted(names) for kind, names in self.backends.items()},
            "attempted": {kind: sorted(names) for kind, names in self.attempted.items()},
            "refused": list(self.refused),
            "import_seconds": self.import_seconds,
            "heavy_imports": list(self.heavy_imports),
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class Registration:
    kind: str
    name: str
    cls: type[BaseComponent]
    plugin: PluginInfo


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _env_list(env: Mapping[str, str], key: str) -> set[str] | None:
    if key not in env:
        return None
    return {_canonical(item.strip()) for item in env[key].split(",") if item.strip()}


def _env_flag(env: Mapping[str, str], key: str) -> bool:
    return env.get(key, "").strip().lower() in ("1", "true", "yes", "on")


EntryPointSource = Callable[[], Iterable[importlib.metadata.EntryPoint]]


def _installed_entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP)


class PluginManager:
    """Finds plugins, asks them for their classes, and answers which class a name means."""

    def __init__(
        self,
        *,
        entry_points: EntryPointSource | None = _installed_entry_points,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``entry_points=None`` loads only the built-in plugin (and what ``register`` adds)."""
        self._entry_points = entry_points
        self._env = os.environ if env is None else env
        self._pluggy = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pluggy.add_hookspecs(hookspecs)
        self._plugins: list[PluginInfo] = []
        self._registry: dict[tuple[str, str], Registration] = {}
        self._by_class: dict[type, Registration] = {}
        self._conflicts: dict[tuple[str, str], list[PluginInfo]] = {}
        #: classes of plugins that failed, so using one names the failure
        self._failed_classes: dict[type, PluginInfo] = {}
        #: classes registered under a built-in name, refused: (plugin, "kind 'name'")
        self._refused_classes: dict[type, tuple[PluginInfo, str]] = {}
        #: problems that belong to no one plugin (an allow-list naming nothing installed)
        self._notes: list[str] = []
        self._lock = threading.RLock()
        self._loaded = False

    @property
    def strict(self) -> bool:
        return _env_flag(self._env, ENV_STRICT)

    @property
    def import_limit(self) -> float:
        value = self._env.get(ENV_IMPORT_LIMIT, "")
        try:
            return float(value) if value.strip() else DEFAULT_IMPORT_LIMIT_S
        except ValueError:
            raise ConfigError(
                f"{ENV_IMPORT_LIMIT}={value!r} is not a number of seconds; unset it or set e.g. 1"
            ) from None

    # -- loading -------------------------------------------------------------------------------

    def load(self) -> None:
        """Discover and load every plugin once; later calls do nothing."""
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            from zenml_core import builtin_plugin

            builtin = PluginInfo(
                BUILTIN_PLUGIN, CORE_DISTRIBUTION, CORE_VERSION, builtin_plugin.__name__
            )
            self._plugins.append(builtin)
            self._add(builtin_plugin, builtin)
            if self._entry_points is not None:
                self._load_entry_points(self._entry_points())
                self._load_modules(self._env.get(ENV_MODULES, ""))
            if self.strict:
                self.raise_problems()

    def register(
        self,
        plugin: Any,
        name: str | None = None,
        *,
        distribution: str | None = None,
        version: str | None = None,
    ) -> PluginInfo:
        """Add a plugin object (a module or any object with hookimpls) in-process.

        For tests and for applications that define backends in their own code.
        """
        with self._lock:
            self.load()
            plugin_name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
            if any(p.name == plugin_name for p in self._plugins):
                raise PluginError(f"A plugin named {plugin_name!r} is already registered.")
            module = getattr(plugin, "__name__", type(plugin).__qualname__)
            info = PluginInfo(plugin_name, distribution, version, module)
            self._plugins.append(info)
            self._add(plugin, info)
            if self.strict:
                self.raise_problems()
            return info

    def unregister(self, name: str) -> None:
        """Remove a plugin added with ``register`` (tests that add one for a while)."""
        with self._lock:
            info = next((p for p in self._plugins if p.name == name), None)
            if info is None:
                raise PluginError(f"No plugin named {name!r} is registered.")
            self._plugins.remove(info)
            for key, registration in list(self._registry.items()):
                if registration.plugin is info:
                    del self._registry[key]
                    self._by_class.pop(registration.cls, None)
            plugin = self._pluggy.get_plugin(name)
            if plugin is not None:
                self._pluggy.unregister(plugin)

    def _load_entry_points(self, entry_points: Iterable[importlib.metadata.EntryPoint]) -> None:
        allow = _env_list(self._env, ENV_ALLOW)
        block = _env_list(self._env, ENV_BLOCK) or set()
        seen: set[tuple[str | None, str]] = set()

        def sort_key(ep: importlib.metadata.EntryPoint) -> tuple[str, str]:
            return (_dist_name(ep) or "", ep.name)

        known: set[str] = set()
        for ep in sorted(entry_points, key=sort_key):
            dist = getattr(ep, "dist", None)
            dist_name = _dist_name(ep)
            if (dist_name, ep.name) in seen:  # the same distribution found twice on sys.path
                continue
            seen.add((dist_name, ep.name))
            info = PluginInfo(ep.name, dist_name, dist.version if dist else None, ep.value)
            self._plugins.append(info)
            keys = {_canonical(ep.name)} | ({_canonical(dist_name)} if dist_name else set())
            known |= keys
            if keys & block:
                info.status = DISABLED
                info.errors.append(f"blocked by {ENV_BLOCK}={self._env.get(ENV_BLOCK)}")
                continue
            if allow is not None and not keys & allow:
                info.status = DISABLED
                info.errors.append(f"not in {ENV_ALLOW}={self._env.get(ENV_ALLOW)}")
                continue
            problem = _core_range_problem(dist)
            if problem:
                info.status = INCOMPATIBLE
                info.errors.append(problem)
                continue
            try:
                plugin = self._timed_import(info, ep.load)
            except Exception as error:
                self._fail(info, f"import of {ep.value!r} failed: {_short(error)}", error)
                continue
            self._add(plugin, info)
        for name in sorted((allow or set()) - known):
            self._notes.append(
                f"{ENV_ALLOW}={self._env.get(ENV_ALLOW)} names {name!r}, but no installed plugin "
                f"is called that (installed: {', '.join(sorted(known)) or 'none'}); check the "
                "spelling or install it"
            )

    def _timed_import(self, info: PluginInfo, load: Callable[[], Any]) -> Any:
        """Import a plugin's entry module, noting how long it took and what heavy modules it
        pulled in (every `zenml` command pays for both)."""
        before = set(sys.modules)
        started = time.perf_counter()
        plugin = load()
        info.import_seconds = time.perf_counter() - started
        info.heavy_imports = heavy_among(set(sys.modules) - before)
        return plugin

    def slow_plugins(self) -> list[str]:
        """Plugins whose entry module is slow or heavy to import, one sentence each."""
        self.load()
        limit = self.import_limit
        lines = []
        for info in self._plugins:
            if info.heavy_imports:
                lines.append(
                    f"{info.label}: importing {info.module} imports {', '.join(info.heavy_imports)}"
                    "; import them inside the functions that need them"
                )
            elif info.import_seconds is not None and info.import_seconds > limit:
                lines.append(
                    f"{info.label}: importing {info.module} took {info.import_seconds:.2f} s "
                    f"(limit {limit:g} s, {ENV_IMPORT_LIMIT}); every zenml command pays for it"
                )
        return lines

    def _load_modules(self, names: str) -> None:
        import importlib

        for name in (n.strip() for n in names.split(",")):
            if not name:
                continue
            info = PluginInfo(name, None, None, name)
            self._plugins.append(info)
            try:
                module = self._timed_import(info, functools.partial(importlib.import_module, name))
            except Exception as error:
                self._fail(
                    info, f"import of {name!r} (from {ENV_MODULES}) failed: {_short(error)}", error
                )
                continue
            self._add(module, info)

    def _add(self, plugin: Any, info: PluginInfo) -> PluginInfo:
        """Register one plugin with pluggy and collect its classes; record what goes wrong."""
        for spec_name in _hook_names():
            candidate = getattr(plugin, spec_name, None)
            marker = f"{hookspecs.PROJECT_NAME}_impl"
            if callable(candidate) and not hasattr(candidate, marker):
                self._fail(
                    info,
                    f"{spec_name} is not marked as a hook; decorate it with @zenml_core.hookimpl",
                )
        try:
            self._pluggy.register(plugin, name=info.name)
        except ValueError as error:  # same object or name registered twice
            self._fail(info, f"cannot be registered: {error}", error)
            return info
        except pluggy.PluginValidationError as error:
            self._fail(info, f"has a bad hook: {error}", error)
            return info
        try:
            self._pluggy.check_pending()
        except pluggy.PluginValidationError as error:
            self._pluggy.unregister(plugin)
            self._fail(info, f"implements a hook zenml-core does not define: {error}", error)
            return info

        collected: list[tuple[str, str, Any]] = []
        for kind, (hook_name, _) in KINDS.items():
            for impl in getattr(self._pluggy.hook, hook_name).get_hookimpls():
                if impl.plugin is not plugin:
                    continue

                def register(name: str, cls: Any, _kind: str = kind) -> None:
                    collected.append((_kind, name, cls))

                arguments = {"register": register}
                try:
                    impl.function(**{arg: arguments[arg] for arg in impl.argnames})
                except Exception as error:
                    self._fail(info, f"raised in {hook_name}: {_short(error)}", error)
        accepted = []
        for kind, name, cls in collected:
            problem = _registration_problem(kind, name, cls)
            if problem:
                self._fail(info, problem)
            builtin = self._registry.get((kind, name))
            if info.name != BUILTIN_PLUGIN and builtin and builtin.plugin.name == BUILTIN_PLUGIN:
                info.refused.append(f"{kind} {name!r}")
                info.attempted.setdefault(kind, []).append(name)
                if isinstance(cls, type):
                    self._refused_classes[cls] = (info, f"{kind} {name!r}")
                continue
            accepted.append((kind, name, cls))
        if info.status != LOADED:
            self._pluggy.unregister(plugin)
            for kind, name, cls in collected:
                info.attempted.setdefault(kind, []).append(name)
                if isinstance(cls, type):
                    self._failed_classes[cls] = info
            return info
        for kind, name, cls in accepted:
            info.backends.setdefault(kind, []).append(name)
            self._remember(Registration(kind, name, cls, info))
        return info

    def _remember(self, registration: Registration) -> None:
        key = (registration.kind, registration.name)
        if key in self._conflicts:
            self._by_class.setdefault(registration.cls, registration)
            self._conflicts[key].append(registration.plugin)
            return
        self._by_class.setdefault(registration.cls, registration)
        existing = self._registry.get(key)
        if existing is None:
            self._registry[key] = registration
            return
        del self._registry[key]
        self._conflicts[key] = [existing.plugin, registration.plugin]

    def _fail(self, info: PluginInfo, message: str, error: BaseException | None = None) -> None:
        info.status = FAILED
        info.errors.append(message)
        if error is not None:
            info.tracebacks.append("".join(traceback.format_exception(error)))

    # -- queries -------------------------------------------------------------------------------

    def plugins(self) -> list[PluginInfo]:
        self.load()
        return list(self._plugins)

    def registrations(self, kind: str | None = None) -> list[Registration]:
        self.load()
        if kind is not None:
            _check_kind(kind)
        return sorted(
            (r for r in self._registry.values() if kind is None or r.kind == kind),
            key=lambda r: (list(KINDS).index(r.kind), r.name),
        )

    def names(self, kind: str) -> list[str]:
        return [r.name for r in self.registrations(kind)]

    def conflicts(self) -> dict[tuple[str, str], list[PluginInfo]]:
        self.load()
        return dict(self._conflicts)

    def problems(self) -> list[str]:
        """Every load error and conflict, one sentence each."""
        self.load()
        lines = [
            f"{info.label}: {error}"
            for info in self._plugins
            if info.status in (FAILED, INCOMPATIBLE)
            for error in info.errors
        ]
        lines += [
            _conflict_message(kind, name, infos) for (kind, name), infos in self._conflicts.items()
        ]
        lines += [
            f"{info.label}: registers {refused}, a name zenml-core itself provides; the built-in "
            "is kept and this registration ignored: its author should rename it"
            for info in self._plugins
            for refused in info.refused
        ]
        return lines + self._notes + self.slow_plugins()

    def failed(self) -> list[PluginInfo]:
        """Plugins that could not be loaded: failed or incompatible."""
        self.load()
        return [p for p in self._plugins if p.status in (FAILED, INCOMPATIBLE)]

    def raise_problems(self) -> None:
        problems = self.problems()
        if problems:
            raise PluginLoadError(
                f"Plugin problems ({ENV_STRICT} is set):\n  " + "\n  ".join(problems)
            )

    def get_class(self, kind: str, name: str) -> type[BaseComponent]:
        """The class registered as ``name`` for ``kind``, or an error that says what to do."""
        _check_kind(kind)
        self.load()
        key = (kind, name)
        if key in self._conflicts:
            raise PluginConflictError(_conflict_message(kind, name, self._conflicts[key]))
        registration = self._registry.get(key)
        if registration is not None:
            return registration.cls
        raise self._explain_missing(kind, name)

    def name_of(self, cls: type) -> str:
        """The name a registered class goes by (for configs and run specs)."""
        self.load()
        registration = self._by_class.get(cls)
        if registration is not None:
            key = (registration.kind, registration.name)
            if key in self._conflicts:
                raise PluginConflictError(_conflict_message(*key, self._conflicts[key]))
            return registration.name
        if cls in self._refused_classes:
            info, what = self._refused_classes[cls]
            raise PluginError(
                f"{cls.__module__}.{cls.__qualname__} was registered by {info.label} as {what}, "
                "a name zenml-core itself provides, so the registration was refused; its author "
                "should register it under a name of its own."
            )
        failed = self._failed_classes.get(cls) or self._failed_plugin_of_module(cls.__module__)
        if failed is not None:
            name = f"{cls.__module__}.{cls.__qualname__}"
            if failed.status == DISABLED:
                raise PluginError(
                    f"{name} comes from {failed.label}, which is installed but not loaded "
                    f"({'; '.join(failed.errors)}); unblock or allow it to use it."
                )
            raise _plugin_error(failed, f"{name} comes from {failed.label}, which")
        raise ConfigError(
            f"{cls.__module__}.{cls.__qualname__} is not registered with zenml-core, so it "
            "has no name to put in a config; register it from a plugin's hook "
            "(see zenml_core.hookspecs) or in tests with the zenml_plugins fixture."
        )

    def _failed_plugin_of_module(self, module: str) -> PluginInfo | None:
        """The plugin that did not load whose package holds ``module`` (its hook may have
        failed before registering the class, or it was never imported)."""
        package = module.split(".")[0]
        for info in self._plugins:
            if info.status == LOADED or package == "zenml_core":
                continue
            if info.module.split(":")[0].split(".")[0] == package:
                return info
        return None

    def _explain_missing(self, kind: str, name: str) -> Exception:
        available = ", ".join(self.names(kind)) or "none"
        base = f"No {kind} backend named {name!r}. Available: {available}."
        for info in self._plugins:
            if info.status in (FAILED, INCOMPATIBLE) and name in info.attempted.get(kind, []):
                return _plugin_error(info, f"{base} {info.label} provides it but")
        distribution = FIRST_PARTY.get((kind, name))
        if distribution:
            installed = [
                i
                for i in self._plugins
                if i.distribution and _canonical(i.distribution) == _canonical(distribution)
            ]
            for info in installed:
                if info.status in (FAILED, INCOMPATIBLE):
                    return _plugin_error(info, f"{base} It comes from {info.label}, which")
                if info.status == DISABLED:
                    return UnknownBackendError(
                        f"{base} It comes from {info.label}, which is installed but disabled "
                        f"({'; '.join(info.errors)})."
                    )
            if installed:
                return UnknownBackendError(
                    f"{base} {installed[0].label} is installed but does not provide it; "
                    f"upgrade it: pip install -U {distribution}"
                )
            return UnknownBackendError(
                f"{base} {name!r} is provided by {distribution}: pip install {distribution}"
            )
        # plugins that never got as far as saying what they provide might provide it
        unknown = [i for i in self.failed() if not i.attempted]
        if unknown:
            error = _plugin_error(unknown[0], f"{base} {unknown[0].label} might provide it but")
            if len(unknown) > 1:
                others = "; ".join(f"{i.label}: {'; '.join(i.errors)}" for i in unknown[1:])
                error = type(error)(f"{error} Other plugins that failed: {others}.")
            return error
        disabled = [i for i in self._plugins if i.status == DISABLED]
        if disabled:
            return UnknownBackendError(
                f"{base} These installed plugins are not loaded and might provide it: "
                + "; ".join(f"{i.label}, {'; '.join(i.errors)}" for i in disabled)
                + f". Unblock it ({ENV_BLOCK}) or allow it ({ENV_ALLOW}) to use it."
            )
        return UnknownBackendError(
            base + " Install the plugin that provides it, or check the spelling."
        )


def _plugin_error(info: PluginInfo, prefix: str) -> PluginError:
    detail = "; ".join(info.errors)
    if info.status == INCOMPATIBLE:
        return IncompatiblePluginError(f"{prefix} was refused: {detail}")
    fix = (
        f"Reinstall or upgrade it (pip install -U {info.distribution}) or block it with "
        f"{ENV_BLOCK}={info.name}."
        if info.distribution
        else "Fix the plugin's code."
    )
    return PluginLoadError(f"{prefix} failed to load: {detail}. {fix}")


def _conflict_message(kind: str, name: str, infos: list[PluginInfo]) -> str:
    who = " and ".join(i.label for i in infos)
    return (
        f"{kind} backend name {name!r} is registered by both {who}; uninstall one of them or "
        f"block one with {ENV_BLOCK}=<plugin name>."
    )


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"Unknown component kind {kind!r}; the kinds are {list(KINDS)}.")


def _hook_names() -> list[str]:
    return [hook for hook, _ in KINDS.values()]


def _dist_name(ep: importlib.metadata.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else None


def _short(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _registration_problem(kind: str, name: str, cls: Any) -> str | None:
    hook_name, base = KINDS[kind]
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        return (
            f"{hook_name} registered the name {name!r}; names are short lowercase words "
            "(letters, digits, '-' and '_', starting with a letter)."
        )
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return (
            f"{hook_name} registered {name!r} as {cls!r}, which is not a subclass of "
            f"{base.__module__.rsplit('.', 1)[0]}.{base.__name__}."
        )
    return None


def _core_range_problem(dist: importlib.metadata.Distribution | None) -> str | None:
    """Why this distribution may not run on this core, read from its metadata before import."""
    if dist is None:
        return None
    from packaging.requirements import InvalidRequirement, Requirement

    for line in dist.requires or []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if _canonical(requirement.name) != CORE_DISTRIBUTION:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if requirement.specifier.contains(CORE_VERSION, prereleases=True):
            return None
        return (
            f"supports zenml-core{requirement.specifier} but zenml-core {CORE_VERSION} is "
            f"running; install a {dist.name} release made for zenml-core {CORE_VERSION} "
            f"(pip install -U {dist.name}) or a matching zenml-core."
        )
    return (
        f"declares no zenml-core requirement, so its supported core range is unknown; its "
        f"author should add e.g. 'zenml-core>={CORE_VERSION.rsplit('.', 1)[0]},<1' "
        "to its dependencies."
    )


# -- the process-wide manager ----------------------------------------------------------------

_manager: PluginManager | None = None
_manager_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager; plugins load on the first question asked of it."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = PluginManager()
        return _manager


def set_plugin_manager(manager: PluginManager | None) -> PluginManager | None:
    """Replace the process-wide manager (tests); returns the previous one."""
    global _manager
    with _manager_lock:
        previous, _manager = _manager, manager
        return previous


def get_backend_class(kind: str, name: str) -> type[BaseComponent]:
    return get_plugin_manager().get_class(kind, name)


def create_backend(kind: str, name: str, **params: Any) -> BaseComponent:
    """Build a backend by its kind and short name, as YAML configs do."""
    return get_backend_class(kind, name).from_params(params)
