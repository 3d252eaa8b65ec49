"""``zenml-gcp sweep``: find the VMs zenml runs left behind (by their ``zenml-run`` label) and
delete them.

A run's VM deletes itself when the run ends and its client deletes it on failure and Ctrl-C;
a VM is left only when both are gone (a killed client and a VM that never finished), and then
``max_run_duration_seconds`` deletes it at the latest. This deletes it now::

    zenml-gcp sweep --project my-project            # list, then delete every zenml VM
    zenml-gcp sweep --project my-project --run RUN  # only that run's
    zenml-gcp sweep --project my-project --dry-run  # list only
"""

from __future__ import annotations

import argparse
import sys


def sweep(
    project: str, run: str | None = None, dry_run: bool = False, endpoint: str | None = None
) -> list[str]:
    """Delete (unless ``dry_run``) every VM of ``project`` labelled by zenml (only ``run``'s,
    if given); the ``zone/name`` of each one found."""
    from zenml_gcp.google import RUN_LABEL, label_value
    from zenml_gcp.orchestrator import compute_clients, wait_operation

    instances, operations = compute_clients(endpoint)
    wanted = f'labels.{RUN_LABEL} = "{label_value(run)}"' if run else f"labels.{RUN_LABEL}:*"
    found = []
    for scope, listed in instances.aggregated_list(request={"project": project, "filter": wanted}):
        zone = scope.rsplit("/", 1)[-1]
        for instance in listed.instances:
            found.append((zone, instance.name, instance.status, instance.labels[RUN_LABEL]))
    for zone, name, status, run_label in found:
        print(f"{'would delete' if dry_run else 'deleting'} {zone}/{name} ({status}, run "
              f"{run_label})")  # fmt: skip
        if not dry_run:
            operation = instances.delete(project=project, zone=zone, instance=name)
            wait_operation(operations, project, zone, operation.name, 600)
    if not found:
        print(f"no zenml VMs in {project}")
    return [f"{zone}/{name}" for zone, name, _, _ in found]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zenml-gcp", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sweeping = commands.add_parser("sweep", help="delete VMs that zenml runs left behind")
    sweeping.add_argument("--project", required=True)
    sweeping.add_argument("--run", help="only the VMs of this run id")
    sweeping.add_argument("--dry-run", action="store_true", help="list them, delete nothing")
    sweeping.add_argument("--endpoint", help="a Compute Engine endpoint other than Google's")
    args = parser.parse_args(argv)
    sweep(args.project, args.run, args.dry_run, args.endpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
