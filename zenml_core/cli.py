"""The ``zenml`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from zenml_core._version import __version__
from zenml_core.exceptions import ZenMLError


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cmd_plugins(args: argparse.Namespace) -> int:
    from zenml_core.backends.base import KINDS
    from zenml_core.plugins import get_plugin_manager

    manager = get_plugin_manager()
    plugins = manager.plugins()
    conflicts = manager.conflicts()
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
                },
                indent=2,
            )
        )
        return 0
    header = ["DISTRIBUTION", "VERSION", "PLUGIN", "STATUS", *[k.upper() for k in KINDS]]
    rows = [
        [
            p.distribution or "-",
            p.version or "-",
            p.name,
            p.status,
            *[",".join(sorted(p.backends.get(kind, []))) or "-" for kind in KINDS],
        ]
        for p in plugins
    ]
    print(_table(header, rows))
    problems = manager.problems()
    disabled = [f"{p.label}: {'; '.join(p.errors)}" for p in plugins if p.status == "disabled"]
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
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    from zenml_core.backends.base import KINDS

    parser = argparse.ArgumentParser(
        prog="zenml", description="ML pipelines on pluggable backends."
    )
    parser.add_argument("--version", action="version", version=f"zenml-core {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    plugins = commands.add_parser(
        "plugins", help="list installed plugins, their backends and errors"
    )
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.add_argument("-v", "--verbose", action="store_true", help="include load tracebacks")
    plugins.set_defaults(handler=_cmd_plugins)

    backends = commands.add_parser(
        "backends", help="list available backends, optionally of one kind"
    )
    backends.add_argument("kind", nargs="?", choices=list(KINDS))
    backends.add_argument("--json", action="store_true", help="machine-readable output")
    backends.set_defaults(handler=_cmd_backends)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ZenMLError as error:
        print(f"zenml: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
