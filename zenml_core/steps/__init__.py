"""The standard steps: data source, splits (more follow: preprocessor, trainer, evaluator)."""

from zenml_core.steps.csv_source import CSVSource
from zenml_core.steps.dataset import Dataset
from zenml_core.steps.split import CategoricalSplit, RandomSplit

__all__ = ["CSVSource", "CategoricalSplit", "Dataset", "RandomSplit"]
