"""StandardPreprocesser at 1M rows through Beam's portable runner (Beam's own job service, the
protocol Flink's and Spark's job servers speak) with 2 SDK workers from an EXTERNAL worker
pool, against the same step in-process. Ratio = portable / in-process; row counts must be
conserved by both (checked, not assumed).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROWS = 1_000_000


def _servers() -> tuple[list[object], str, str]:
    from zenml_core.testing.processes import free_port, start_server
    from zenml_loopback.listeners import preload_library

    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    service_port, pool_port = free_port(), free_port()
    service = start_server(
        [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
         "--port", str(service_port)],
        service_port, "Beam job service", env=env, timeout=120,
    )  # fmt: skip
    pool = start_server(
        [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
         "--service_port", str(pool_port)],
        pool_port, "Beam worker pool", env={**env, "LD_PRELOAD": preload_library()}, timeout=120,
    )  # fmt: skip
    return [service, pool], f"localhost:{service_port}", f"localhost:{pool_port}"


def run() -> list[dict[str, object]]:
    import apache_beam  # noqa: F401  - imports are not part of the computation measured
    from preprocessing import _make_data, _ours, _timed

    from zenml_core.backends import LocalProcessingBackend
    from zenml_core.testing.processes import stop
    from zenml_dataflow.portable import PortableProcessingBackend

    processes, endpoint, pool = _servers()
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
        for process in processes:
            stop(process, timeout=10)  # type: ignore[arg-type]
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
