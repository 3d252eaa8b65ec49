"""Run every benchmark and print one table: ``./dev bench``.

Targets are reported, never asserted in tests: timings depend on the machine.
"""

from __future__ import annotations

import sys

import engine_overhead  # bench/ is on sys.path when this file runs as a script
import history
import plugin_discovery
import portable
import preprocessing
import standard_path

BENCHMARKS = [plugin_discovery, engine_overhead, history, preprocessing, standard_path, portable]


def main() -> int:
    rows = [row for module in BENCHMARKS for row in module.run()]
    header = ["benchmark", "value", "target", "met", "heavy modules imported"]
    table = [
        [
            str(r["benchmark"]),
            str(r["value"]),
            str(r["target"]),
            "yes" if r["ok"] else "NO",
            ", ".join(r["heavy modules"]) or "none",
        ]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *table]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
