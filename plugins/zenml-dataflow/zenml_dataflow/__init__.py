"""zenml-dataflow: data steps' Beam jobs on Google Dataflow and on portable job services
(Flink, Spark) for zenml-core."""

__version__ = "0.1.0"
