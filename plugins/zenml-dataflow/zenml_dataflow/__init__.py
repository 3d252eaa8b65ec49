"""zenml-dataflow: Google Dataflow processing backend for zenml-core."""

__version__ = "0.1.0"
