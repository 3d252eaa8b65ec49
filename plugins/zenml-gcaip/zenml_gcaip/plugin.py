"""Entry point of zenml-gcaip: the hooks zenml-core calls to find this plugin's backends.

Kept light: backend classes are imported inside the hooks, and the Google clients inside the
methods that use them.
"""

from zenml_core import hookimpl


@hookimpl
def register_training_backends(register):  # type: ignore[no-untyped-def]
    from zenml_gcaip.training import SingleGPUTrainingGCAIPBackend, VertexTrainingBackend

    register("gcaip", VertexTrainingBackend)
    register("gcaip-single-gpu", SingleGPUTrainingGCAIPBackend)
