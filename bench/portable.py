"""StandardPreprocesser at 1M rows through Beam's portable runner (Beam's own job service, the
protocol Flink's and Spark's job servers speak) with 2 SDK workers from an EXTERNAL worker
pool, against the same step in-process. Ratio = portable / in-process; row counts must be
conserved by both (checked, not assumed).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

ROWS = 1_000_000


def run() -> list[dict[str, object]]:
    import apache_beam  # noqa: F401  - imports are not part of the computation measured
    from preprocessing import _make_data, _ours, _timed

    from zenml_core.backends import LocalProcessingBackend
    from zenml_core.testing.processes import stop
    from zenml_dataflow.portable import PortableProcessingBackend
    from zenml_loopback.beam_service import start_job_service, start_worker_pool

    service, endpoint = start_job_service()
    worker_pool, pool = start_worker_pool()
    try:
        with tempfile.TemporaryDirectory(prefix="zenml-bench-portable-") as tmp:
            root = Path(tmp)
            data = _make_data(root / "data", ROWS)
            local, local_rows = _timed(_ours, data, root / "local", LocalProcessingBackend())
            portable = PortableProcessingBackend(
                job_endpoint=endpoint,
                environment_type="EXTERNAL",
                environment_config=pool,
                extra_args=["--direct_num_workers=2"],
            )
            remote, remote_rows = _timed(_ours, data, root / "portable", portable)
            counts = {ROWS, local_rows, remote_rows}
    finally:
        stop(worker_pool, timeout=10)
        stop(service, timeout=10)
    return [
        {
            "benchmark": "preprocess 1M rows: portable runner, 2 workers / in-process "
            f"({local:.1f} s)",
            "value": f"{remote / local:.2f}x ({remote:.1f} s), rows conserved: {len(counts) == 1}",
            "target": "(reported); rows conserved",
            "ok": len(counts) == 1,
            "heavy modules": [],
        }
    ]


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
