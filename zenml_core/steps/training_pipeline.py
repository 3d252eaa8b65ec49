"""TrainingPipeline: the seed's shape — data source, split, preprocesser, trainer, evaluator —
wired for you; each slot takes any step with the same inputs and outputs."""

from __future__ import annotations

from typing import Any

from zenml_core.exceptions import ConfigError, PipelineError
from zenml_core.pipeline.pipeline import Pipeline
from zenml_core.pipeline.step import Step


class TrainingPipeline(Pipeline):
    def run(self, *args: Any, **kwargs: Any) -> Any:
        """As ``Pipeline.run``; first, where the data source's columns can be known (a local
        CSV's header), the columns the other steps name are checked, before any step runs."""
        self.check_columns()
        return super().run(*args, **kwargs)

    def check_columns(self) -> None:
        """``ConfigError`` for a label, feature, slice or split column the data lacks."""
        slots: dict[str, Step] = self.__dict__.get("_slots", {})
        columns = _source_columns(slots.get("datasource"))
        if columns is None:
            return
        named: list[tuple[str, str, str]] = []  # (step, parameter, column)
        for slot, parameters in (("split", ("column",)), ("preprocesser", ("label", "features")),
                                 ("evaluator", ("slices",))):  # fmt: skip
            step = slots.get(slot)
            if step is None:
                continue
            for parameter in parameters:
                value = step.params.get(parameter)
                for column in [value] if isinstance(value, str) else value or []:
                    named.append((step.name, parameter, column))
        missing = [(s, p, c) for s, p, c in named if c not in columns]
        if missing:
            listed = "; ".join(f"{s}({p}=...) names {c!r}" for s, p, c in missing)
            raise ConfigError(
                f"{listed}, but the data has no such column: its columns are {columns}. "
                "Nothing has run."
            )

    def add_datasource(self, step: Step) -> Step:
        return self._slot("datasource", step, {})

    def add_split(self, step: Step) -> Step:
        return self._slot("split", step, {"data": ("datasource", "output")})

    def add_preprocesser(self, step: Step) -> Step:
        return self._slot("preprocesser", step, {"data": ("split", "output")})

    def add_trainer(self, step: Step) -> Step:
        return self._slot(
            "trainer",
            step,
            {
                "data": ("preprocesser", "transformed"),
                "transform": ("preprocesser", "transform"),
            },
        )

    def add_evaluator(self, step: Step) -> Step:
        return self._slot(
            "evaluator",
            step,
            {
                "data": ("split", "output"),
                "transform": ("preprocesser", "transform"),
                "model": ("trainer", "output"),
            },
        )

    def _slot(self, slot: str, step: Step, wiring: dict[str, tuple[str, str]]) -> Step:
        slots = self.__dict__.setdefault("_slots", {})
        if slot in slots:
            raise PipelineError(f"This training pipeline already has a {slot}.")
        for argument, (upstream, output) in wiring.items():
            if upstream not in slots:
                raise PipelineError(
                    f"add_{slot} needs a {upstream} first: call add_{upstream}(...) before it."
                )
            if argument not in step.inputs:  # wired by hand wins
                step.connect(**{argument: slots[upstream][output]})
        slots[slot] = self.add_step(step)
        return step


def _source_columns(source: Step | None) -> list[str] | None:
    """The columns a CSVSource will give, from its file's header, when it is a local file."""
    from zenml_core.steps.csv_source import CSVSource

    if not isinstance(source, CSVSource):
        return None
    path = source.params.get("path")
    if not isinstance(path, str) or ("://" in path and not path.startswith("file://")):
        return None
    import csv
    from pathlib import Path

    file = Path(path.removeprefix("file://"))
    if not file.is_file():
        return None  # the step says so, with its own message
    delimiter = source.params.get("delimiter", ",")
    with file.open(newline="", encoding="utf-8", errors="replace") as handle:
        header = next(csv.reader(handle, delimiter=delimiter), [])
    return [name.strip() for name in header]
