"""TrainingPipeline: the seed's shape — data source, split, preprocesser, trainer, evaluator —
wired for you; each slot takes any step with the same inputs and outputs."""

from __future__ import annotations

from zenml_core.exceptions import PipelineError
from zenml_core.pipeline.pipeline import Pipeline
from zenml_core.pipeline.step import Step


class TrainingPipeline(Pipeline):
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
