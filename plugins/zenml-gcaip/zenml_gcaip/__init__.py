"""zenml-gcaip: trainer steps on Vertex AI custom jobs (AI Platform Training's successor)."""

__version__ = "0.1.0"
