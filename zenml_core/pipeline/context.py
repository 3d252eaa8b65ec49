"""What a running step can ask of the run it is in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class StepContext:
    """Declare an entrypoint argument of this type to receive it."""

    pipeline: str
    run_id: str
    step: str
    #: the processing or training backend this step runs under
    backend: Any
    #: a private scratch folder, removed after the step
    temp_dir: Path

    def beam_options(self, **overrides: Any) -> Any:
        """Beam ``PipelineOptions`` for this step, from its processing backend."""
        from apache_beam.options.pipeline_options import PipelineOptions

        args = self.backend.beam_args(job_name=f"{self.run_id}-{self.step}")
        return PipelineOptions(args, **overrides)
