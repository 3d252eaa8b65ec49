"""Pipelines, steps, the run spec and the engine that executes it."""

from zenml_core.backends.request import RunResult
from zenml_core.pipeline.context import StepContext
from zenml_core.pipeline.pipeline import Pipeline
from zenml_core.pipeline.step import Outputs, Step, step

__all__ = ["Outputs", "Pipeline", "RunResult", "Step", "StepContext", "step"]
