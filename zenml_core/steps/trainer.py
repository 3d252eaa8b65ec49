"""TFFeedForwardTrainer: a Keras feed-forward network on the preprocessed splits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from zenml_core.exceptions import ConfigError
from zenml_core.pipeline.context import StepContext
from zenml_core.pipeline.step import Step
from zenml_core.steps.dataset import Dataset, register_folder_type
from zenml_core.steps.preprocess import LABEL, feature_names

KERAS_FILE = "model.keras"
SAVED_MODEL = "saved_model"
INFO_FILE = "model.json"
MAX_CLASSES_OF_AN_INTEGER_LABEL = 20


@dataclass(frozen=True)
class Model:
    """A trained model folder: Keras format, a SavedModel export, and what it was trained on."""

    path: Path

    @property
    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = json.loads((self.path / INFO_FILE).read_text())
        return info

    def load(self) -> Any:
        import keras

        return keras.models.load_model(self.path / KERAS_FILE)


register_folder_type("model", Model)


class TFFeedForwardTrainer(Step):
    """Dense layers (``layers`` units each, ReLU) trained with Adam.

    The task follows from the label: classes (a string label, or an integer label with at most
    20 values) give a classifier, anything else a regressor; ``task`` forces one.
    """

    STEP_KIND = "training"

    def entrypoint(
        self,
        ctx: StepContext,
        data: Dataset,
        transform: dict[str, Any],
        layers: list[int] | None = None,
        epochs: int = 10,
        batch_size: int = 64,
        learning_rate: float = 0.001,
        task: Literal["auto", "classification", "regression"] = "auto",
        train_split: str = "train",
        eval_split: str = "eval",
        seed: int = 0,
    ) -> Model:
        import numpy as np

        layers = [64, 32] if layers is None else layers
        if any(units < 1 for units in layers) or epochs < 1 or batch_size < 1:
            raise ConfigError(
                "TFFeedForwardTrainer: layers, epochs and batch_size must be positive, got "
                f"layers={layers}, epochs={epochs}, batch_size={batch_size}."
            )
        if not learning_rate > 0:
            raise ConfigError(
                f"TFFeedForwardTrainer: learning_rate must be > 0, got {learning_rate}."
            )
        for split in (train_split, eval_split):
            if split not in data.splits:
                raise ConfigError(
                    f"TFFeedForwardTrainer: no split {split!r} in the data ({data.splits})."
                )
        features = feature_names(transform)
        x_train, y_train = _arrays(data, train_split, features)
        x_eval, y_eval = _arrays(data, eval_split, features)
        classes = _classes(transform, y_train, task)
        if classes is not None and len(classes) < 2:
            raise ConfigError(
                f"TFFeedForwardTrainer: the label {transform['label']!r} has only one class "
                f"({classes[0]!r}) in the {train_split!r} split; a classifier needs at least two."
            )

        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
        import keras

        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input(shape=(len(features),))])
        for units in layers:
            model.add(keras.layers.Dense(units, activation="relu"))
        if classes is None:
            model.add(keras.layers.Dense(1))
            loss, metrics = "mse", ["mae"]
        elif len(classes) == 2:
            model.add(keras.layers.Dense(1, activation="sigmoid"))
            loss, metrics = "binary_crossentropy", ["accuracy", keras.metrics.AUC(name="auc")]
        else:
            model.add(keras.layers.Dense(len(classes), activation="softmax"))
            loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)
        history = model.fit(
            x_train,
            y_train.astype(np.float32),
            validation_data=(x_eval, y_eval.astype(np.float32)),
            epochs=epochs,
            batch_size=batch_size,
            verbose=0,
        )
        out = ctx.output_dir()
        model.save(out / KERAS_FILE)
        model.export(out / SAVED_MODEL, verbose=False)  # for TF Serving and friends
        (out / INFO_FILE).write_text(
            json.dumps(
                {
                    "task": "regression" if classes is None else "classification",
                    "classes": classes,
                    "features": features,
                    "label": transform["label"],
                    "history": {
                        k: [float(v) for v in values] for k, values in history.history.items()
                    },
                }
            )
        )
        return Model(out)


def _arrays(data: Dataset, split: str, features: list[str]) -> tuple[Any, Any]:
    import numpy as np

    table = data.read(split)
    missing = [f for f in [*features, LABEL] if f not in table.column_names]
    if missing:
        raise ConfigError(
            f"TFFeedForwardTrainer: the data lacks {missing}; train on the 'transformed' output "
            "of StandardPreprocesser together with its 'transform'."
        )
    x = np.stack([table[f].to_numpy(zero_copy_only=False) for f in features], axis=1)
    return x.astype(np.float32), table[LABEL].to_numpy(zero_copy_only=False)


def _classes(transform: dict[str, Any], labels: Any, task: str) -> list[Any] | None:
    import numpy as np

    if transform["classes"] is not None:
        if task == "regression":
            raise ConfigError("TFFeedForwardTrainer: a string label cannot be regressed.")
        present = sorted({int(v) for v in np.unique(labels) if v >= 0})
        return (
            [transform["classes"][i] for i in present]
            if len(present) < 2
            else list(transform["classes"])
        )
    if task == "regression":
        return None
    values = np.unique(labels)
    integer = np.issubdtype(labels.dtype, np.integer) or np.all(np.mod(values, 1) == 0)
    if task == "classification" or (integer and len(values) <= MAX_CLASSES_OF_AN_INTEGER_LABEL):
        if not integer or values.min() < 0:
            raise ConfigError(
                "TFFeedForwardTrainer: classification needs labels 0..k-1; this label has "
                f"values {values[:10].tolist()}."
            )
        return [int(v) for v in values] if len(values) < 2 else list(range(int(values.max()) + 1))
    return None
