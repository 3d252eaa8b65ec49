"""The loopback Dataflow's worker: run a Dataflow job's staged pipeline for real.

``python -m zenml_loopback.dataflow_worker PIPELINE_URL`` reads the Runner API
pipeline Beam's DataflowRunner staged (``pipeline.pb``), points its SDK environments at this
interpreter (Dataflow would start its SDK harness container instead), and runs it with Beam's
portable FnApiRunner. Exit status 0 when the pipeline is DONE.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.portability import python_urns
    from apache_beam.portability.api import beam_runner_api_pb2
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    (url,) = argv
    pipeline = beam_runner_api_pb2.Pipeline()
    with FileSystems.open(url) as staged:
        pipeline.ParseFromString(staged.read())
    for environment in pipeline.components.environments.values():
        environment.urn = python_urns.EMBEDDED_PYTHON
        environment.payload = b""
    result = FnApiRunner().run_via_runner_api(pipeline, PipelineOptions([]))
    result.wait_until_finish()
    print(f"loopback-dataflow: pipeline {result.state}", flush=True)
    return 0 if str(result.state) == "DONE" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
