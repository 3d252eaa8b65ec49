"""zenml-gcaip: Vertex AI / AI Platform training backend for zenml-core."""

__version__ = "0.1.0"
