"""The run spec: a pipeline as plain JSON, the one thing every backend ships and executes.

Steps by importable source, their parameters and wiring, each component's config (secrets left
out), the run id and the code package's address. No pickles: any process with the code can
rebuild the run from it, which is how a remote run *is* the local engine, elsewhere.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from zenml_core.exceptions import PipelineError

SPEC_VERSION = 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_STEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # no '.': inputs read "step.output"
#: names become folders and metadata keys: long ones fail late (after a step ran) elsewhere
MAX_NAME = 128


#: parameter names taken for secrets when a config's class cannot be found to say so
_SECRET_WORDS = ("password", "secret", "token", "credential", "private_key", "api_key")


def _without_secrets(config: Any) -> Any:
    if not isinstance(config, dict) or not isinstance(config.get("params"), dict):
        return config
    import dataclasses

    from zenml_core.plugins import get_plugin_manager

    params = dict(config["params"])
    try:
        cls = get_plugin_manager().get_class(str(config.get("kind")), str(config.get("name")))
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        secret = {f.name for f in fields if f.metadata.get("secret")}
    except Exception:  # its class is unknown here: go by the names secrets usually have
        secret = {
            key
            for key in params
            if any(w in key.lower() for w in _SECRET_WORDS) and not key.endswith("_env")
        }
    for key in secret & params.keys():
        params[key] = None
    return config | {"params": params}


def check_name(value: Any, what: str, *, dots: bool = True, limit: int = MAX_NAME) -> str:
    """``value`` if it is a plain name (the same rule for YAML, run specs and Python), else a
    ``PipelineError`` naming ``what``: a letter or digit, then letters, digits, '_', '-' (and
    '.' where ``dots``), at most ``limit`` characters; never '/', '..' alone or a newline."""
    pattern = _NAME if dots else _STEP_NAME
    if not isinstance(value, str) or not pattern.fullmatch(value) or len(value) > limit:
        allowed = "letters, digits, '.', '_' or '-'" if dots else "letters, digits, '_' or '-'"
        shown = repr(value) if len(repr(value)) <= 80 else f"{repr(value)[:77]}..."
        raise PipelineError(
            f"{what} must be {allowed}, starting with a letter or digit, at most {limit} "
            f"characters; got {shown}."
        )
    return value


@dataclass
class StepSpec:
    name: str
    source: str
    params: dict[str, Any] = field(default_factory=dict)
    #: argument -> "step.output"
    inputs: dict[str, str] = field(default_factory=dict)
    #: processing or training backend config, None for the pipeline's default
    backend: dict[str, Any] | None = None
    enable_cache: bool = True
    #: the step's own settings for whoever runs it, e.g. {"resources": {"memory": "8Gi"}}
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class CodeRef:
    uri: str
    sha256: str


@dataclass
class PipelineSpec:
    """A pipeline, as YAML files and run specs hold it."""

    name: str
    steps: list[StepSpec]
    #: kind -> component config: orchestrator, processing, training, metadata_store,
    #: artifact_store; missing kinds take the defaults
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    enable_cache: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> PipelineSpec:
        _require_mapping(data, "pipeline")
        _check_keys(data, {"name", "steps", "components", "enable_cache"}, "pipeline")
        name = check_name(data.get("name"), "Pipeline 'name'")
        steps = data.get("steps")
        if not isinstance(steps, list) or not steps:
            raise PipelineError(f"Pipeline {name!r} needs a non-empty list of 'steps'.")
        components = data.get("components") or {}
        _require_mapping(components, "'components'")
        for kind, config in components.items():
            _require_mapping(config, f"component {kind!r}")
        enable_cache = data.get("enable_cache", True)
        if not isinstance(enable_cache, bool):
            raise PipelineError(f"'enable_cache' must be true or false, got {enable_cache!r}.")
        spec = cls(
            name,
            [_step_from_dict(s, i) for i, s in enumerate(steps)],
            dict(components),
            enable_cache,
        )
        spec.check_graph()
        return spec

    def check_graph(self) -> list[StepSpec]:
        """Unique names, inputs that point at existing steps, no cycles; steps in run order."""
        by_name: dict[str, StepSpec] = {}
        for step in self.steps:
            if step.name in by_name:
                raise PipelineError(f"Two steps are named {step.name!r}; give one .with_name().")
            by_name[step.name] = step
        for step in self.steps:
            for argument, address in step.inputs.items():
                upstream = address.split(".", 1)[0]
                if upstream not in by_name:
                    raise PipelineError(
                        f"Step {step.name!r} input {argument!r} comes from {address!r}, but there "
                        f"is no step {upstream!r}; steps are {sorted(by_name)}."
                    )
        order: list[StepSpec] = []
        state: dict[str, int] = {}  # 1 visiting, 2 done

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = " -> ".join([*path[path.index(name) :], name])
                raise PipelineError(f"The steps form a cycle: {cycle}.")
            state[name] = 1
            for address in by_name[name].inputs.values():
                visit(address.split(".", 1)[0], [*path, name])
            state[name] = 2
            order.append(by_name[name])

        for step in self.steps:
            visit(step.name, [])
        return order


@dataclass
class RunSpec:
    """One run of a pipeline: what ``python -m zenml_core run --spec`` executes."""

    run_id: str
    pipeline: PipelineSpec
    code: CodeRef | None = None
    version: int = SPEC_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts sharing this spec's values (no deep copy: it is on every run's path)."""
        pipeline = vars(self.pipeline) | {"steps": [vars(step) for step in self.pipeline.steps]}
        code = vars(self.code) if self.code is not None else None
        return vars(self) | {"pipeline": pipeline, "code": code}

    def to_json(self) -> str:
        """The spec as it is published and stored: secrets left out (see ``redacted``)."""
        return json.dumps(self.redacted(), indent=1, sort_keys=True)

    def redacted(self) -> dict[str, Any]:
        """``to_dict`` with every secret parameter of every component set to None, so a
        spec that was handed a password (say, in ``metadata_store.params``) is never stored,
        published or printed with it; secrets reach a run through its environment."""
        data = self.to_dict()
        pipeline = data["pipeline"]
        components = {kind: _without_secrets(c) for kind, c in pipeline["components"].items()}
        steps = [
            step | {"backend": _without_secrets(step["backend"])} if step.get("backend") else step
            for step in pipeline["steps"]
        ]
        return data | {"pipeline": pipeline | {"components": components, "steps": steps}}

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise PipelineError(f"The run spec is not JSON: {error}.") from None
        except RecursionError:
            raise PipelineError("The run spec nests too deeply to be a run spec.") from None
        _require_mapping(data, "run spec")
        _check_keys(data, {"run_id", "pipeline", "code", "version"}, "run spec")
        if data.get("version") != SPEC_VERSION:
            raise PipelineError(
                f"Run spec version {data.get('version')!r} is not {SPEC_VERSION}; run it with the "
                "zenml-core release that wrote it."
            )
        run_id = check_name(data.get("run_id"), "Run spec 'run_id'", limit=MAX_NAME + 32)
        code = data.get("code")
        if code is not None:
            _require_mapping(code, "'code'")
            _check_keys(code, {"uri", "sha256"}, "'code'")
            digest = code.get("sha256")
            if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise PipelineError(
                    f"Run spec 'code.sha256' must be a SHA-256 digest (64 hex digits), got "
                    f"{digest!r}."
                )
            code = CodeRef(str(code.get("uri")), digest)
        return cls(run_id, PipelineSpec.from_dict(data.get("pipeline")), code)


def _step_from_dict(data: Any, index: int) -> StepSpec:
    _require_mapping(data, f"step #{index + 1}")
    where = f"step {data.get('name', f'#{index + 1}')!r}"
    _check_keys(
        data, {"name", "source", "params", "inputs", "backend", "enable_cache", "settings"}, where
    )
    name, source = data.get("name"), data.get("source")
    name = check_name(name, f"{where}: 'name'", dots=False)
    if not isinstance(source, str) or ":" not in source:
        raise PipelineError(f"{where}: 'source' must be 'package.module:Name', got {source!r}.")
    params = data.get("params") or {}
    inputs = data.get("inputs") or {}
    _require_mapping(params, f"{where} 'params'")
    _require_mapping(inputs, f"{where} 'inputs'")
    both = sorted(set(params) & set(inputs))
    if both:
        raise PipelineError(
            f"{where}: {both} given both as 'params' and as 'inputs'; an argument is one or "
            "the other."
        )
    for argument, address in inputs.items():
        if not isinstance(address, str) or address.count(".") < 1:
            raise PipelineError(
                f"{where}: input {argument!r} must be 'step.output', got {address!r}."
            )
    backend = data.get("backend")
    if backend is not None:
        _require_mapping(backend, f"{where} 'backend'")
    enable_cache = data.get("enable_cache", True)
    if not isinstance(enable_cache, bool):
        raise PipelineError(f"{where}: 'enable_cache' must be true or false.")
    settings = data.get("settings") or {}
    _require_mapping(settings, f"{where} 'settings'")
    if "resources" in settings:
        from zenml_core.backends.remote import Resources

        try:
            Resources.from_dict(settings["resources"])
        except ValueError as error:
            raise PipelineError(f"{where}: {error}") from None
    return StepSpec(name, source, dict(params), dict(inputs), backend, enable_cache, dict(settings))


def _require_mapping(value: Any, what: str) -> None:
    if not isinstance(value, dict):
        raise PipelineError(f"The {what} must be a mapping, got {type(value).__name__}.")


def _check_keys(data: dict[str, Any], allowed: set[str], what: str) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise PipelineError(
            f"Unknown key(s) {sorted(unknown)} in the {what}; allowed: {sorted(allowed)}."
        )
