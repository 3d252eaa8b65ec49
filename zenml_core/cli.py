"""The ``zenml`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from zenml_core._version import __version__
from zenml_core.exceptions import ConfigError, ZenMLError


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cmd_plugins(args: argparse.Namespace) -> int:
    """Exit 1 when a plugin failed to load (or, with --check, on any problem at all)."""
    from zenml_core.kinds import KINDS
    from zenml_core.plugins import DISABLED, get_plugin_manager

    manager = get_plugin_manager()
    plugins = manager.plugins()
    conflicts = manager.conflicts()
    problems = manager.problems()
    code = 1 if manager.failed() or (args.check and problems) else 0
    if args.json:
        print(
            json.dumps(
                {
                    "core_version": __version__,
                    "plugins": [
                        p.as_dict() | ({"tracebacks": p.tracebacks} if args.verbose else {})
                        for p in plugins
                    ],
                    "conflicts": [
                        {"kind": kind, "name": name, "distributions": [i.label for i in infos]}
                        for (kind, name), infos in conflicts.items()
                    ],
                    "problems": problems,
                },
                indent=2,
            )
        )
        return code
    header = ["DISTRIBUTION", "VERSION", "PLUGIN", "STATUS", *[k.upper() for k in KINDS]]
    if args.verbose:
        header += ["IMPORT", "HEAVY IMPORTS"]
    rows = []
    for p in plugins:
        row = [
            p.distribution or "-",
            p.version or "-",
            p.name,
            p.status,
            *[",".join(sorted(p.backends.get(kind, []))) or "-" for kind in KINDS],
        ]
        if args.verbose:
            seconds = "-" if p.import_seconds is None else f"{p.import_seconds * 1000:.1f} ms"
            row += [seconds, ",".join(p.heavy_imports) or "-"]
        rows.append(row)
    print(_table(header, rows))
    disabled = [f"{p.label}: {'; '.join(p.errors)}" for p in plugins if p.status == DISABLED]
    if problems:
        print("\nProblems:")
        for line in problems:
            print(f"  {line}")
    if disabled:
        print("\nDisabled:")
        for line in disabled:
            print(f"  {line}")
    if args.verbose:
        for p in plugins:
            for tb in p.tracebacks:
                print(f"\n{p.label}:\n{tb}")
    return code


def _cmd_backends(args: argparse.Namespace) -> int:
    from zenml_core.plugins import get_plugin_manager

    registrations = get_plugin_manager().registrations(args.kind)
    rows = [
        [
            r.kind,
            r.name,
            f"{r.cls.__module__}.{r.cls.__qualname__}",
            r.plugin.distribution or "-",
            r.plugin.version or "-",
        ]
        for r in registrations
    ]
    if args.json:
        keys = ["kind", "name", "class", "distribution", "version"]
        print(json.dumps([dict(zip(keys, row, strict=True)) for row in rows], indent=2))
    else:
        print(_table(["KIND", "NAME", "CLASS", "DISTRIBUTION", "VERSION"], rows))
    return 0


def _progress_printer() -> Any:
    from zenml_core.progress import Printer

    return Printer()


def _report(result: Any) -> int:
    print(f"run {result.run_id}: {result.status}")
    print(f"  metadata:  {_where(result.metadata_store)}")
    print(f"  artifacts: {result.artifact_store.root}")
    return 0


def _where(store: Any) -> str:
    return str(getattr(store, "_where", lambda: type(store).__name__)())


def _cmd_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from zenml_core.repository import init

    folder = init(Path(args.path).absolute())
    print(
        f"Initialised {folder}: metadata in {folder / 'metadata.db'}, artifacts in "
        f"{folder / 'artifacts'}"
    )
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from zenml_core.exceptions import StepFailedError

    progress = _progress_printer()
    try:
        if args.spec:
            from zenml_core.pipeline.runner import run_spec

            result = run_spec(args.spec, progress=progress)
        else:
            if not args.pipeline:
                raise ConfigError("Give a pipeline YAML file, or --spec for a run spec.")
            from zenml_core.pipeline import Pipeline

            path = Path(args.pipeline)
            if not path.is_file():
                raise ConfigError(f"No pipeline file {path}.")
            for folder in (str(path.parent.absolute()), str(Path.cwd())):
                if folder not in sys.path:
                    sys.path.insert(0, folder)  # steps are usually modules beside the YAML
            pipeline = Pipeline.from_yaml_file(path)
            result = pipeline.run(enable_cache=False if args.no_cache else None, progress=progress)
    except StepFailedError as error:
        print(f"zenml: {error}", file=sys.stderr)
        return 1
    return _report(result)


def _cmd_step(args: argparse.Namespace) -> int:
    from zenml_core.pipeline.runner import run_spec_step

    run_spec_step(args.spec, args.step, args.execution_id)
    return 0


def _metadata_store() -> Any:
    from zenml_core.kinds import KINDS
    from zenml_core.repository import default_components

    return KINDS["metadata_store"][1].from_config(default_components()["metadata_store"])


def _cmd_runs_list(args: argparse.Namespace) -> int:
    store = _metadata_store()
    store.reconcile(args.pipeline)  # runs whose process was killed say so, not "running"
    runs = store.list_runs(args.pipeline)
    metrics = _metrics_of(store, runs)
    if args.json:
        print(json.dumps([_run_json(r) | {"metrics": metrics[r.run_id]} for r in runs], indent=2))
        return 0
    rows = [
        [r.run_id, r.pipeline, r.status, _time(r.started_at), _duration(r),
         " ".join(f"{k}={v:.4g}" for k, v in metrics[r.run_id].items()) or "-"]
        for r in runs
    ]  # fmt: skip
    print(_table(["RUN", "PIPELINE", "STATUS", "STARTED", "DURATION", "METRICS"], rows))
    return 0


def _metrics_of(store: Any, runs: list[Any]) -> dict[str, dict[str, float]]:
    """Each run's overall evaluation metrics (its first evaluator's), or {}."""
    from zenml_core.exceptions import ZenMLError
    from zenml_core.report import evaluations

    artifacts = _artifact_store()
    found = {}
    for run in runs:
        try:
            results = evaluations(store.get_run(run.run_id), artifacts)
        except (ZenMLError, OSError):  # artifacts gone or elsewhere: the listing still works
            results = []
        overall = results[0][1].get("overall", {}) if results else {}
        found[run.run_id] = {k: v for k, v in overall.items() if isinstance(v, float)}
    return found


def _artifact_store() -> Any:
    from zenml_core.kinds import KINDS
    from zenml_core.repository import default_components

    return KINDS["artifact_store"][1].from_config(default_components()["artifact_store"])


def _cmd_runs_show(args: argparse.Namespace) -> int:
    store = _metadata_store()
    run = store.get_run(args.run)
    if run.status == "running" and store.reconcile(run.pipeline):
        run = store.get_run(args.run)
    if args.json:
        print(json.dumps(_run_json(run, steps=True), indent=2))
        return 0
    print(
        f"run {run.run_id}  pipeline {run.pipeline}  {run.status}  "
        f"orchestrator {run.orchestrator}  {_duration(run)}"
    )
    if run.error:
        print(f"error: {run.error}")
    rows = []
    steps = run.steps_in_order()
    for step in steps:
        outputs = ", ".join(f"{n}={a.uri}" for n, a in sorted(step.outputs.items())) or "-"
        rows.append([step.step, step.state, _duration(step), step.backend or "-", outputs])
    print(_table(["STEP", "STATE", "DURATION", "BACKEND", "OUTPUTS"], rows))
    given = [(name, params) for name, params in run.parameters.items() if params]
    if given:
        print("\nparameters:")
        rows = [[n, key, json.dumps(value)] for n, params in given for key, value in params.items()]
        print(_table(["STEP", "PARAMETER", "VALUE"], rows))
    for step in steps:
        if step.error:
            print(f"\n{step.step} failed:\n{step.error}")
    _print_metrics(run)
    return 0


def _print_metrics(run: Any) -> None:
    """Evaluation results among the run's outputs, as a small table each."""
    from zenml_core.report import evaluation_table, evaluations

    for step, result in evaluations(run, _artifact_store()):
        print(f"\nevaluation ({step}):")
        print(_table(*evaluation_table(result)))


def _cmd_runs_report(args: argparse.Namespace) -> int:
    from zenml_core.report import REPORT_FILE, write_report

    store = _artifact_store()
    _print_page(store, write_report(args.run, _metadata_store(), store), REPORT_FILE, args.open)
    return 0


def _cmd_runs_compare(args: argparse.Namespace) -> int:
    from zenml_core import compare

    if len(args.runs) < 2:
        print("zenml: error: give at least two runs to compare", file=sys.stderr)
        return 2
    metadata, artifacts = _metadata_store(), _artifact_store()
    summaries = [compare.summarise(metadata.get_run(r), artifacts) for r in args.runs]
    if args.json:
        print(json.dumps(compare.comparison_json(summaries), indent=2))
        return 0
    print(_table(*compare.table(summaries, every_parameter=args.all)))
    uri = compare.write_comparison(args.runs, metadata, artifacts)
    print()
    _print_page(artifacts, uri, compare.COMPARE_FILE, args.open)
    return 0


def _cmd_runs_index(args: argparse.Namespace) -> int:
    from zenml_core import compare

    store = _artifact_store()
    _print_page(store, compare.write_index(_metadata_store(), store), compare.INDEX_FILE, args.open)
    return 0


def _print_page(store: Any, uri: str, name: str, open_it: bool) -> None:
    """Print where a written page is (and open it in a browser if asked)."""
    with store.reader(uri) as folder:
        path = folder / name
        print(path)
        if open_it:
            import webbrowser

            webbrowser.open(path.as_uri())


def _run_json(run: Any, steps: bool = False) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(run)
    if not steps:
        data.pop("steps")
    return data


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(record: Any) -> str:
    if record.started_at is None or record.ended_at is None:
        return "-"
    return f"{record.ended_at - record.started_at:.2f}s"


def _cmd_docker_base(args: argparse.Namespace) -> int:
    from zenml_core.docker import base_image

    print(base_image(gpu=args.gpu))
    return 0


def _cmd_docker_build(args: argparse.Namespace) -> int:
    from zenml_core.docker import build_image

    built = build_image(
        args.tag,
        base=args.base,
        requirements=args.requirement,
        requirements_file=args.requirements,
        source=args.source,
        pip_args=args.pip_arg,
        push=args.push,
        network_mode=args.network,
    )
    print(f"{built.tag} {built.id}" + (f" pushed {built.digest}" if built.digest else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from zenml_core.kinds import KINDS

    parser = argparse.ArgumentParser(
        prog="zenml", description="ML pipelines on pluggable backends."
    )
    parser.add_argument("--version", action="version", version=f"zenml-core {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    plugins = commands.add_parser(
        "plugins", help="list installed plugins, their backends and errors"
    )
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="include each plugin's import time, heavy imports and load tracebacks",
    )
    plugins.add_argument(
        "--check", action="store_true", help="exit 1 on any problem, not only a failed plugin"
    )
    plugins.set_defaults(handler=_cmd_plugins)

    backends = commands.add_parser(
        "backends", help="list available backends, optionally of one kind"
    )
    backends.add_argument("kind", nargs="?", choices=list(KINDS))
    backends.add_argument("--json", action="store_true", help="machine-readable output")
    backends.set_defaults(handler=_cmd_backends)

    init = commands.add_parser("init", help="create .zenml/ with the embedded defaults here")
    init.add_argument("path", nargs="?", default=".")
    init.set_defaults(handler=_cmd_init)

    run = commands.add_parser("run", help="run a pipeline YAML file, or a run spec")
    run.add_argument("pipeline", nargs="?", help="pipeline YAML file")
    run.add_argument("--spec", help="run spec JSON (a path or an artifact-store URI)")
    run.add_argument("--no-cache", action="store_true", help="run every step again")
    run.set_defaults(handler=_cmd_run)

    step = commands.add_parser("step", help="run one step of a run spec (used by backends)")
    step.add_argument("--spec", required=True)
    step.add_argument("--step", required=True)
    step.add_argument("--execution-id", type=int, required=True)
    step.set_defaults(handler=_cmd_step)

    runs = commands.add_parser("runs", help="list and inspect recorded runs")
    runs_commands = runs.add_subparsers(dest="runs_command", required=True, metavar="COMMAND")
    runs_list = runs_commands.add_parser("list", help="runs, newest first")
    runs_list.add_argument("--pipeline")
    runs_list.add_argument("--json", action="store_true")
    runs_list.set_defaults(handler=_cmd_runs_list)
    runs_show = runs_commands.add_parser("show", help="one run: steps, states, artifacts")
    runs_show.add_argument("run")
    runs_show.add_argument("--json", action="store_true")
    runs_show.set_defaults(handler=_cmd_runs_show)
    runs_report = runs_commands.add_parser(
        "report", help="write the run's HTML report (DAG, plots, metrics); print its path"
    )
    runs_report.add_argument("run")
    runs_report.add_argument("--open", action="store_true", help="open it in a browser")
    runs_report.set_defaults(handler=_cmd_runs_report)
    runs_compare = runs_commands.add_parser(
        "compare", help="runs side by side: metrics, differing parameters, overlaid curves"
    )
    runs_compare.add_argument("runs", nargs="+", metavar="RUN")
    runs_compare.add_argument("--all", action="store_true", help="every parameter, not only "
                              "those that differ")  # fmt: skip
    runs_compare.add_argument("--json", action="store_true")
    runs_compare.add_argument("--open", action="store_true", help="open the page in a browser")
    runs_compare.set_defaults(handler=_cmd_runs_compare)
    runs_index = runs_commands.add_parser(
        "index", help="write a page of every run (metrics, key parameters, reports); print it"
    )
    runs_index.add_argument("--open", action="store_true", help="open it in a browser")
    runs_index.set_defaults(handler=_cmd_runs_index)

    docker = commands.add_parser("docker", help="images for remote backends")
    docker_commands = docker.add_subparsers(dest="docker_command", required=True, metavar="COMMAND")
    docker_base = docker_commands.add_parser("base", help="print this version's base image")
    docker_base.add_argument("--gpu", action="store_true", help="the GPU variant")
    docker_base.set_defaults(handler=_cmd_docker_base)
    docker_build = docker_commands.add_parser(
        "build", help="build an image FROM the base image with your requirements (and code)"
    )
    docker_build.add_argument("tag", help="e.g. europe-docker.pkg.dev/PROJECT/ml/trainer:1.0")
    docker_build.add_argument("--base", help="base image (default: this version's)")
    docker_build.add_argument(
        "-p", "--requirement", action="append", default=[], help="a requirement (repeatable)"
    )
    docker_build.add_argument("-r", "--requirements", help="a requirements file")
    docker_build.add_argument("--source", help="bake this project folder in at /app")
    docker_build.add_argument(
        "--pip-arg", action="append", default=[], help="an argument for pip (repeatable)"
    )
    docker_build.add_argument("--network", help="build network mode, e.g. host")
    docker_build.add_argument("--push", action="store_true", help="push it after building")
    docker_build.set_defaults(handler=_cmd_docker_build)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # a closed pipe shows here, not as a traceback at exit
        return code
    except ZenMLError as error:
        print(f"zenml: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("zenml: interrupted; a run under way is recorded as failed", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `zenml runs list | head`: the reader has what it wanted
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 141  # 128 + SIGPIPE, as a shell reports it


if __name__ == "__main__":
    sys.exit(main())
