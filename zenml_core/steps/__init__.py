"""The standard steps of a training pipeline: CSV source, splits, preprocesser, trainer and
evaluator, and the TrainingPipeline that wires them."""

from zenml_core.steps.csv_source import CSVSource
from zenml_core.steps.dataset import Dataset
from zenml_core.steps.evaluator import Evaluator
from zenml_core.steps.preprocess import StandardPreprocesser
from zenml_core.steps.split import CategoricalSplit, RandomSplit
from zenml_core.steps.trainer import Model, TFFeedForwardTrainer
from zenml_core.steps.training_pipeline import TrainingPipeline

__all__ = [
    "CSVSource",
    "CategoricalSplit",
    "Dataset",
    "Evaluator",
    "Model",
    "RandomSplit",
    "StandardPreprocesser",
    "TFFeedForwardTrainer",
    "TrainingPipeline",
]
