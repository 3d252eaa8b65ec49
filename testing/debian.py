"""Install the Debian packages the test servers need (repository test support; no wheel
installs packages). ``python testing/debian.py GROUP...``: missing programs of each group are
installed with apt-get as root; already installed ones cost nothing. ``./dev test`` runs this
for the sessions that need each group.

Groups: mariadb (MySQL metadata-store tests), chromium (the run report as a browser renders
it), docker (zenml_loopback's own dockerd, its offline base image, a registry on loopback).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

SBIN = ("/usr/sbin", "/usr/bin", "/sbin")

#: group -> (program, Debian package that provides it)
GROUPS: dict[str, list[tuple[str, str]]] = {
    "mariadb": [
        ("mariadbd", "mariadb-server"),
        ("mariadb-install-db", "mariadb-server"),
        ("mariadb", "mariadb-client"),
    ],
    "chromium": [("chromium", "chromium")],
    "docker": [
        ("dockerd", "docker.io"),
        ("debootstrap", "debootstrap"),
        ("docker-registry", "docker-registry"),
    ],
}


def installed(program: str) -> bool:
    return bool(shutil.which(program)) or any(os.access(f"{d}/{program}", os.X_OK) for d in SBIN)


def main(groups: list[str]) -> int:
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        print(f"debian.py: unknown group(s) {unknown}; the groups are {list(GROUPS)}")
        return 2
    missing = sorted(
        {package for g in groups for program, package in GROUPS[g] if not installed(program)}
    )
    if not missing:
        return 0
    if os.geteuid() != 0:
        print(f"debian.py: not root; install these yourself: apt-get install {' '.join(missing)}")
        return 1
    print(f"debian.py: apt-get install {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=env,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
