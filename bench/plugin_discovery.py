"""Start-up costs: a cold ``import zenml_core``, and ``zenml plugins`` with the 4 first-party
plugins plus 50 generated third-party plugin distributions installed in a fresh venv."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

from zenml_core.testing import HEAVY_MODULES
from zenml_core.testing.plugin_factory import (
    build_wheels,
    orchestrator_plugin_source,
    write_plugin_project,
)

ROOT = Path(__file__).resolve().parents[1]
THIRD_PARTY_PLUGINS = 50
REPEATS = 15

HEAVY_CHECK = (
    "import json, sys; heavy = {heavy!r}; "
    "print(json.dumps(sorted(m for m in sys.modules "
    "if any(m == h or m.startswith(h + '.') for h in heavy))))"
)


def _median_seconds(command: list[str]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _heavy(python: str, statement: str) -> list[str]:
    code = f"{statement}\n{HEAVY_CHECK.format(heavy=HEAVY_MODULES)}"
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout
    return list(json.loads(out.strip().splitlines()[-1]))


def run() -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="zenml-bench-") as tmp:
        work = Path(tmp)
        projects = [
            write_plugin_project(
                work / "projects",
                f"acme-zenml-plugin-{i:02d}",
                orchestrator_plugin_source(f"acme{i:02d}", f"Acme{i:02d}Orchestrator"),
            )
            for i in range(THIRD_PARTY_PLUGINS)
        ]
        first_party = sorted(p for p in (ROOT / "plugins").iterdir() if p.is_dir())
        wheels = work / "wheels"
        build_wheels([ROOT, *first_party, *projects], wheels)
        env_dir = work / "venv"
        venv.create(env_dir, with_pip=True)
        python = str(env_dir / "bin" / "python")
        # Third-party deps of the core come from the index, pinned like every other install.
        subprocess.run(
            [
                python,
                "-m",
                "pip",
                "install",
                "--quiet",
                "-c",
                str(ROOT / "constraints.txt"),
                *map(str, wheels.glob("*.whl")),
            ],
            check=True,
        )
        zenml = str(env_dir / "bin" / "zenml")
        report = json.loads(
            subprocess.run(
                [zenml, "plugins", "--json"], check=True, capture_output=True, text=True
            ).stdout
        )
        loaded = sum(p["status"] == "loaded" for p in report["plugins"])

        baseline = _median_seconds([python, "-c", "pass"])
        import_total = _median_seconds([python, "-c", "import zenml_core"])
        listing = _median_seconds([zenml, "plugins"])
        rows = [
            {
                "benchmark": "cold `import zenml_core` (process time minus bare interpreter)",
                "value": f"{import_total - baseline:.3f} s",
                "target": "<= 0.15 s",
                "ok": import_total - baseline <= 0.15,
                "heavy modules": _heavy(python, "import zenml_core"),
            },
            {
                "benchmark": f"`zenml plugins`, {loaded} plugins loaded (whole process)",
                "value": f"{listing:.3f} s",
                "target": "<= 0.4 s",
                "ok": listing <= 0.4 and loaded == THIRD_PARTY_PLUGINS + 4 + 1,
                "heavy modules": _heavy(
                    python,
                    "import contextlib, io\nfrom zenml_core.cli import main\n"
                    "with contextlib.redirect_stdout(io.StringIO()): main(['plugins'])",
                ),
            },
        ]
        for row in rows:
            row["ok"] = bool(row["ok"]) and not row["heavy modules"]
        return rows


if __name__ == "__main__":
    for row in run():
        print(row)
        sys.stdout.flush()
