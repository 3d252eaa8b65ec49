"""Steps: the units of a pipeline, as decorated functions or as ``Step`` subclasses.

A step's ``entrypoint`` declares everything by its signature: arguments bound to another step's
output are *inputs* (artifacts), other arguments are *parameters* (JSON values), an argument
annotated ``StepContext`` receives the run's context, and the return annotation declares the
outputs (one value, or several with ``Outputs(name=type, ...)``)::

    @step
    def double(x: int, factor: int = 2) -> int:
        return x * factor

    pipeline.add_step(double(x=produce.output, factor=3))
"""

from __future__ import annotations

import hashlib
import inspect
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from zenml_core.exceptions import ConfigError

SINGLE_OUTPUT = "output"


class Outputs:
    """Return annotation for several named outputs: ``-> Outputs(train=Table, eval=Table)``.

    The entrypoint then returns a dict (or a tuple in declaration order).
    """

    def __init__(self, **types: Any) -> None:
        from zenml_core.pipeline.spec import check_name

        if not types:
            raise ConfigError("Outputs(...) needs at least one name=type.")
        for name in types:
            check_name(name, "An output name", dots=False)
        self.types = types

    def __repr__(self) -> str:
        names = (f"{k}={getattr(v, '__name__', v)}" for k, v in self.types.items())
        return f"Outputs({', '.join(names)})"


@dataclass(frozen=True)
class OutputRef:
    """One output of one step, used to wire it into another step's input."""

    step: Step
    name: str

    @property
    def address(self) -> str:
        return f"{self.step.name}.{self.name}"


class Step:
    """A configured step: parameters, wired inputs, an optional backend, a name.

    Subclass and define ``entrypoint`` (its arguments other than ``self`` follow the rules in
    the module docstring), or decorate a function with ``@step``. ``STEP_KIND`` says which
    backend kind runs it: "processing" (data steps) or "training" (trainers).
    """

    STEP_KIND: ClassVar[str] = "processing"
    #: parameters whose values are paths or URIs of data the step reads from outside the
    #: pipeline (a CSV file, a bucket folder): their content is part of the cache key, so
    #: changed data is never served from the cache (``@step(reads=["path"])``)
    READS: ClassVar[tuple[str, ...]] = ()
    entrypoint: ClassVar[Callable[..., Any]]

    def __init__(self, **arguments: Any) -> None:
        self.name: str = _default_name(type(self))
        self.params: dict[str, Any] = {}
        self.inputs: dict[str, OutputRef] = {}
        self.backend: Any = None
        self.enable_cache = True
        #: for whoever runs the step (see ``with_resources``); travels in the run spec
        self.settings: dict[str, Any] = {}
        self.connect(**arguments)

    # -- configuration -------------------------------------------------------------------------

    def connect(self, **arguments: Any) -> Step:
        """Bind arguments: outputs of other steps become inputs, other values parameters."""
        signature = self.signature()
        for key, value in arguments.items():
            if key not in signature.arguments:
                raise ConfigError(
                    f"Step {self.name!r} has no argument {key!r}; its arguments are "
                    f"{sorted(signature.arguments) or 'none'}."
                )
            if isinstance(value, Step):
                value = value.output
            if isinstance(value, OutputRef):
                self.params.pop(key, None)
                self.inputs[key] = value
            else:
                from zenml_core.component import _describe, _matches

                expected = signature.arguments[key]
                if not _matches(value, expected):
                    raise ConfigError(
                        f"Step {self.name!r}: parameter {key!r} must be {_describe(expected)}, "
                        f"got {type(value).__name__} {value!r}."
                    )
                self.inputs.pop(key, None)
                self.params[key] = value
        self.check_params({**signature.defaults, **self.params})
        return self

    def check_params(self, params: dict[str, Any]) -> None:
        """Refuse bad parameter values as soon as the step is configured, before any step of
        the pipeline runs: raise ``ConfigError`` naming the problem and the fix. ``params``
        holds the values given so far over the defaults (inputs are not there yet). Checks
        that need the data (a column exists) stay in ``entrypoint``."""

    def with_backend(self, backend: Any) -> Step:
        """Run this step on a processing or training backend (as the seed's steps do)."""
        from zenml_core.backends.base import BaseProcessingBackend, BaseTrainingBackend

        expected = BaseTrainingBackend if self.STEP_KIND == "training" else BaseProcessingBackend
        if not isinstance(backend, expected):
            raise ConfigError(
                f"Step {self.name!r} is a {self.STEP_KIND} step and needs a "
                f"{expected.__name__}, got {type(backend).__name__}."
            )
        self.backend = backend
        return self

    def with_resources(
        self,
        *,
        cpu: str | float | None = None,
        memory: str | None = None,
        gpus: int = 0,
        gpu_type: str | None = None,
    ) -> Step:
        """What this step needs where it runs on its own (an orchestrator that runs each step
        separately, e.g. ``KubernetesOrchestrator(per_step=True)``): CPUs (``2``, ``"500m"``),
        memory (``"8Gi"``), GPUs and their type. Backends that run the whole pipeline in one
        place use their own settings instead."""
        from zenml_core.backends.remote import Resources

        resources = Resources(cpu=cpu, memory=memory, gpus=gpus, gpu_type=gpu_type)
        self.settings["resources"] = resources.to_dict()
        return self

    def with_name(self, name: str) -> Step:
        from zenml_core.pipeline.spec import check_name

        self.name = check_name(name, "Step name", dots=False)
        return self

    def with_cache(self, enabled: bool) -> Step:
        self.enable_cache = enabled
        return self

    # -- outputs -------------------------------------------------------------------------------

    def __getitem__(self, name: str) -> OutputRef:
        outputs = self.signature().outputs
        if name not in outputs:
            raise ConfigError(
                f"Step {self.name!r} has no output {name!r}; its outputs are {sorted(outputs)}."
            )
        return OutputRef(self, name)

    @property
    def output(self) -> OutputRef:
        """The only output of a single-output step."""
        outputs = self.signature().outputs
        if len(outputs) != 1:
            raise ConfigError(
                f"Step {self.name!r} has outputs {sorted(outputs)}; pick one with step['name']."
            )
        return OutputRef(self, next(iter(outputs)))

    # -- identity ------------------------------------------------------------------------------

    @classmethod
    def signature(cls) -> StepSignature:
        cached = cls.__dict__.get("_signature")
        if cached is None:
            cached = StepSignature.of(cls)
            cls._signature = cached  # type: ignore[attr-defined]
        return cached

    @classmethod
    def source(cls) -> str:
        """Importable address of this step: 'package.module:Name'."""
        cached = cls.__dict__.get("_source")
        if cached is None:
            from zenml_core.pipeline.sources import source_of

            cached = source_of(cls)
            cls._source = cached  # type: ignore[attr-defined]
        return cached

    @classmethod
    def code_hash(cls) -> str:
        """Changes whenever the step's code changes; part of the cache key."""
        cached = cls.__dict__.get("_code_hash")
        if cached is None:
            target = cls.__dict__.get("_function") or cls
            try:
                code = inspect.getsource(target)
            except (OSError, TypeError):
                code = cls.__qualname__  # no source on disk: identity by name only
            cached = hashlib.sha256(code.encode()).hexdigest()
            cls._code_hash = cached  # type: ignore[attr-defined]
        return cached

    def __repr__(self) -> str:
        return f"<step {self.name} {type(self).__qualname__} params={self.params}>"


@dataclass(frozen=True)
class StepSignature:
    """What an entrypoint takes and returns, read once from its annotations."""

    arguments: dict[str, Any]  # name -> annotation, excluding the context argument
    defaults: dict[str, Any]
    context_argument: str | None
    outputs: dict[str, Any]  # name -> annotation
    single: bool  # one unnamed output (returned as a plain value)

    @classmethod
    def of(cls, step_class: type[Step]) -> StepSignature:
        from zenml_core.pipeline.context import StepContext

        function = step_class.entrypoint
        hints = typing.get_type_hints(function)
        parameters = list(inspect.signature(function).parameters.values())
        if parameters and parameters[0].name == "self":
            parameters = parameters[1:]
        arguments: dict[str, Any] = {}
        defaults: dict[str, Any] = {}
        context_argument = None
        for parameter in parameters:
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise ConfigError(
                    f"Step {step_class.__qualname__}: *args/**kwargs are not supported; "
                    "name every input and parameter."
                )
            annotation = hints.get(parameter.name, Any)
            if annotation is StepContext:
                context_argument = parameter.name
                continue
            arguments[parameter.name] = annotation
            if parameter.default is not parameter.empty:
                defaults[parameter.name] = parameter.default
        returned = inspect.signature(function).return_annotation
        if isinstance(returned, str):
            returned = hints.get("return", Any)
        if isinstance(returned, Outputs):
            return cls(arguments, defaults, context_argument, dict(returned.types), False)
        if returned is None or returned is type(None) or returned is inspect.Signature.empty:
            return cls(arguments, defaults, context_argument, {}, False)
        return cls(arguments, defaults, context_argument, {SINGLE_OUTPUT: returned}, True)


def step(
    function: Callable[..., Any] | None = None,
    *,
    kind: str = "processing",
    reads: Iterable[str] = (),
) -> Any:
    """Make a step from a function: ``@step``, ``@step(kind="training")``, or
    ``@step(reads=["path"])`` for a step whose ``path`` parameter names outside data.

    Calling the result with arguments gives a configured ``Step`` for a pipeline.
    """
    if kind not in ("processing", "training"):
        raise ConfigError(f"@step kind must be 'processing' or 'training', got {kind!r}.")
    read_parameters = (reads,) if isinstance(reads, str) else tuple(reads)

    def wrap(func: Callable[..., Any]) -> type[Step]:
        namespace = {
            "STEP_KIND": kind,
            "READS": read_parameters,
            "entrypoint": staticmethod(func),
            "_function": func,
            "__module__": func.__module__,
            "__qualname__": func.__qualname__,
            "__doc__": func.__doc__,
        }
        step_class: type[Step] = type(func.__name__, (Step,), namespace)
        signature = step_class.signature()  # bad annotations fail here, at definition
        unknown = [r for r in read_parameters if r not in signature.arguments]
        if unknown:
            raise ConfigError(
                f"@step(reads={list(read_parameters)}) of {func.__qualname__}: {unknown} are "
                f"not parameters of it; its parameters are {sorted(signature.arguments)}."
            )
        return step_class

    return wrap(function) if function is not None else wrap


def _default_name(step_class: type[Step]) -> str:
    """'RandomSplit' -> 'random_split', 'CSVSource' -> 'csv_source', 'double' -> 'double'."""
    import re

    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", step_class.__name__)
    return words.lower()
