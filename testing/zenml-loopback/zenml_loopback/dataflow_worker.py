"""The loopback Dataflow's job runner: run a job's staged pipeline on its workers.

``python -m zenml_loopback.dataflow_worker PIPELINE_FILE HOST:PORT`` reads the Runner API
pipeline Beam's DataflowRunner staged (``pipeline.pb``), points its SDK environments at the
worker pool at HOST:PORT (started in the job's image, as Dataflow starts its SDK harness
container there), and runs it with Beam's portable FnApiRunner. The environments keep their
capabilities, so the harness in the image checks that it can run what was built. Exit status
0 when the pipeline is DONE; otherwise the error follows a ``loopback-dataflow: error`` line.
"""

from __future__ import annotations

import sys
import traceback


def main(argv: list[str]) -> int:
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.portability import common_urns
    from apache_beam.portability.api import beam_runner_api_pb2, endpoints_pb2
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    path, pool = argv
    pipeline = beam_runner_api_pb2.Pipeline()
    with open(path, "rb") as staged:
        pipeline.ParseFromString(staged.read())
    external = beam_runner_api_pb2.ExternalPayload(
        endpoint=endpoints_pb2.ApiServiceDescriptor(url=pool)
    ).SerializeToString()
    for environment in pipeline.components.environments.values():
        environment.urn = common_urns.environments.EXTERNAL.urn
        environment.payload = external
    try:
        result = FnApiRunner().run_via_runner_api(pipeline, PipelineOptions([]))
        result.wait_until_finish()
    except Exception as error:
        print("loopback-dataflow: error", flush=True)
        print("".join(traceback.format_exception_only(type(error), error)).strip(), flush=True)
        return 1
    print(f"loopback-dataflow: pipeline {result.state}", flush=True)
    return 0 if str(result.state) == "DONE" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
