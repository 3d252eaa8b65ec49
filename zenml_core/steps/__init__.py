"""The standard steps: data source, splits, preprocessor (trainer and evaluator to follow)."""

from zenml_core.steps.csv_source import CSVSource
from zenml_core.steps.dataset import Dataset
from zenml_core.steps.preprocess import StandardPreprocesser
from zenml_core.steps.split import CategoricalSplit, RandomSplit

__all__ = ["CSVSource", "CategoricalSplit", "Dataset", "RandomSplit", "StandardPreprocesser"]
