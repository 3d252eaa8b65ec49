"""Entry point of zenml-dataflow: the hooks zenml-core calls to find this plugin's backends.

Kept light: backend classes are imported inside the hooks, and Beam's runners and the Google
clients inside the methods that use them.
"""

from zenml_core import hookimpl


@hookimpl
def register_processing_backends(register):  # type: ignore[no-untyped-def]
    from zenml_dataflow.dataflow import ProcessingDataFlowBackend
    from zenml_dataflow.portable import PortableProcessingBackend

    register("dataflow", ProcessingDataFlowBackend)
    register("portable", PortableProcessingBackend)
