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

    It trains on ``train_split``. Its validation curves (``val_*`` in the history) come from
    the training data, never from ``eval_split``, the split the Evaluator scores: by default
    ``validation_fraction`` (10 %) of the training rows, drawn with ``seed`` and left out of
    training; or a split of its own, ``validation_split`` (say a "validation" split from
    ``RandomSplit``). ``validation_fraction=0`` trains on every row and reports no ``val_*``.
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
        validation_fraction: float = 0.1,
        validation_split: str | None = None,
    ) -> Model:
        import numpy as np

        layers = [64, 32] if layers is None else layers
        wanted = [train_split] + ([validation_split] if validation_split else [])
        for split in wanted:
            if split not in data.splits:
                raise ConfigError(
                    f"TFFeedForwardTrainer: no split {split!r} in the data ({data.splits})."
                )
        features = feature_names(transform)
        x_train, y_train = _arrays(data, train_split, features)
        validation = None
        if validation_split:
            validation = _arrays(data, validation_split, features)
        elif validation_fraction > 0:
            x_train, y_train, validation = _hold_out(x_train, y_train, validation_fraction, seed)
        classes = _classes(transform, y_train, task)
        if classes is not None and len(classes) < 2:
            raise ConfigError(
                f"TFFeedForwardTrainer: the label {transform['label']!r} has only one class "
                f"({classes[0]!r}) in the {train_split!r} split; a classifier needs at least two."
            )

        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
        import keras

        from zenml_core.distributed import cluster_task

        keras.utils.set_random_seed(seed)
        cluster = cluster_task()
        held_out = None if validation is None else (validation[0], validation[1].astype(np.float32))

        def report(epoch: int, logs: dict[str, Any]) -> None:  # the run's progress line
            shown = {k: v for k, v in logs.items() if k in ("loss", "val_loss", "accuracy")}
            ctx.progress(
                epoch, epochs, "epochs", " ".join(f"{k} {v:.4f}" for k, v in shown.items())
            )

        if cluster is not None and cluster.trainers > 1:
            model, history = _fit_on_cluster(
                report,
                cluster, features, layers, classes, learning_rate,
                (x_train, y_train.astype(np.float32)), held_out, epochs, batch_size, seed,
            )  # fmt: skip
        else:
            model = _model(features, layers, classes, learning_rate)
            history = model.fit(
                x_train,
                y_train.astype(np.float32),
                validation_data=held_out,
                epochs=epochs,
                batch_size=batch_size,
                verbose=0,
                callbacks=[
                    keras.callbacks.LambdaCallback(
                        on_epoch_end=lambda epoch, logs: report(epoch + 1, logs or {})
                    )
                ],
            ).history
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
                    "replicas": cluster.trainers if cluster is not None else 1,
                    "trained_on": {"split": train_split, "rows": len(x_train)},
                    "validated_on": (
                        {"split": validation_split}
                        if validation_split
                        else {"split": train_split, "fraction": validation_fraction, "seed": seed}
                        if validation is not None
                        else None
                    ),
                    "history": {k: [float(v) for v in values] for k, values in history.items()},
                }
            )
        )
        return Model(out)

    def check_params(self, params: dict[str, Any]) -> None:
        layers = params.get("layers") or []
        epochs, batch_size = params.get("epochs", 1), params.get("batch_size", 1)
        if any(units < 1 for units in layers) or epochs < 1 or batch_size < 1:
            raise ConfigError(
                "TFFeedForwardTrainer: layers, epochs and batch_size must be positive, got "
                f"layers={layers}, epochs={epochs}, batch_size={batch_size}."
            )
        if not params.get("learning_rate", 1) > 0:
            raise ConfigError(
                f"TFFeedForwardTrainer: learning_rate must be > 0, got {params['learning_rate']}."
            )
        fraction = params.get("validation_fraction", 0.1)
        if not 0 <= fraction < 1:
            raise ConfigError(
                f"TFFeedForwardTrainer: validation_fraction must be in [0, 1), got {fraction}."
            )
        validation, scored = params.get("validation_split"), params.get("eval_split", "eval")
        if validation is not None and validation in (scored, params.get("train_split", "train")):
            raise ConfigError(
                f"TFFeedForwardTrainer: validation_split={validation!r} is the split it "
                f"{'trains on' if validation != scored else 'is evaluated on'}: validation data "
                "must be neither; add a third split (RandomSplit(split_map={'train': 0.7, "
                "'validation': 0.1, 'eval': 0.2})) or use validation_fraction."
            )


def _hold_out(x: Any, y: Any, fraction: float, seed: int) -> tuple[Any, Any, tuple[Any, Any]]:
    """A seeded ``fraction`` of the rows as validation data; the rest to train on."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(x))
    cut = max(1, round(len(x) * fraction)) if len(x) > 1 else 0
    kept, held = order[cut:], order[:cut]
    return x[kept], y[kept], (x[held], y[held])


def _model(features: list[str], layers: list[int], classes: list[Any] | None, rate: float) -> Any:
    """Dense ReLU layers and the head the task needs, compiled with Adam."""
    import keras

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
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss, metrics=metrics)
    return model


def _fit_on_cluster(
    report: Any,
    cluster: Any,
    features: list[str],
    layers: list[int],
    classes: list[Any] | None,
    rate: float,
    train: tuple[Any, Any],
    validation: tuple[Any, Any] | None,
    epochs: int,
    batch_size: int,
    seed: int,
) -> tuple[Any, dict[str, list[float]]]:
    """Train one model on every replica of the cluster with MultiWorkerMirroredStrategy: each
    step's batch of ``batch_size`` rows is split between the replicas and the gradients are
    summed across them, so every replica holds the same weights.

    Keras 3's ``fit`` fails under this strategy (keras-team/keras#20585: PerReplica values
    reach a tensor conversion), so this is the strategy's own custom loop over the same model.
    """
    import math
    import os

    import tensorflow as tf

    os.environ.setdefault("TF_CONFIG", cluster.tf_config())  # from Vertex's CLUSTER_SPEC
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    x, y = train
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    batches = iter(strategy.experimental_distribute_dataset(
        data.batch(batch_size, drop_remainder=True).with_options(options)))  # fmt: skip
    with strategy.scope():
        model = _model(features, layers, classes, rate)
    per_row = _per_row_loss(classes)

    def one_step(batch: Any) -> Any:
        rows, labels = batch
        with tf.GradientTape() as tape:
            predicted = model(rows, training=True)
            loss = tf.nn.compute_average_loss(
                per_row(labels, predicted), global_batch_size=batch_size
            )
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss

    @tf.function  # type: ignore[untyped-decorator]
    def train_step() -> Any:
        losses = strategy.run(one_step, args=(next(batches),))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    steps = max(1, math.ceil(len(x) / batch_size))
    history: dict[str, list[float]] = {}
    for epoch in range(1, epochs + 1):
        for _ in range(steps):
            train_step()
        # every replica has the same weights: each scores the splits locally, as fit() would
        scored = [("", train)] + ([("val_", validation)] if validation is not None else [])
        for prefix, (rows, labels) in scored:
            for name, value in _scores(model, classes, rows, labels).items():
                history.setdefault(prefix + name, []).append(value)
        report(epoch, {name: values[-1] for name, values in history.items()})
    return model, history


def _per_row_loss(classes: list[Any] | None) -> Any:
    import keras

    if classes is None:
        return keras.losses.MeanSquaredError(reduction="none")
    if len(classes) == 2:
        return lambda y, p: keras.losses.binary_crossentropy(keras.ops.reshape(y, (-1, 1)), p)
    return keras.losses.SparseCategoricalCrossentropy(reduction="none")


def _scores(model: Any, classes: list[Any] | None, rows: Any, labels: Any) -> dict[str, float]:
    """The metrics ``fit`` reports for the model's task, on one split."""
    import keras
    import numpy as np

    predicted = model.predict(rows, verbose=0, batch_size=4096)
    if classes is None:
        flat = predicted[:, 0]
        return {"loss": float(np.mean((flat - labels) ** 2)),
                "mae": float(np.mean(np.abs(flat - labels)))}  # fmt: skip
    if len(classes) == 2:
        p = np.clip(predicted[:, 0], 1e-7, 1 - 1e-7)
        auc = keras.metrics.AUC()
        auc.update_state(labels, p)
        return {
            "loss": float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))),
            "accuracy": float(np.mean((p > 0.5) == (labels > 0.5))),
            "auc": float(auc.result()),
        }
    p = np.clip(predicted, 1e-7, 1.0)
    index = labels.astype(int)
    return {"loss": float(-np.mean(np.log(p[np.arange(len(index)), index]))),
            "accuracy": float(np.mean(np.argmax(p, axis=1) == index))}  # fmt: skip


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
