"""What a running step can ask of the run it is in."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
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
    #: where ``output_dir`` makes folders: beside the artifact store's staging area, so that
    #: publishing what a step wrote there is a rename, not a copy
    output_parent: Path | None = None
    _made: list[Path] = field(default_factory=list, repr=False)

    def output_dir(self) -> Path:
        """A new empty folder for a large output (e.g. a Beam job's Parquet files); return it
        wrapped in the output's type and it is moved, not copied, into the artifact."""
        import tempfile

        parent = self.output_parent or self.temp_dir
        parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-out-", dir=parent))
        self._made.append(folder)
        return folder

    def cleanup(self) -> None:
        """Remove the output folders still there (moved ones are gone already)."""
        import shutil

        for folder in self._made:
            shutil.rmtree(folder, ignore_errors=True)

    def progress(self, done: int, total: int | None = None, unit: str = "", note: str = "") -> None:
        """Say how far the step is (``ctx.progress(3, 15, "epochs", "loss 0.42")``): the run's
        progress printer shows it, live on a terminal."""
        from zenml_core import progress

        progress.update(self.run_id, self.step, done, total, unit, note)

    def count(self, amount: int, unit: str = "rows") -> None:
        """Add to the step's running count. From a Beam job's transforms, call
        ``zenml_core.progress.count(run_id, step, n)`` with this context's ``run_id`` and
        ``step`` instead (strings pickle; a context need not): it is shown when the job runs
        in this process (the in-memory runner)."""
        from zenml_core import progress

        progress.count(self.run_id, self.step, amount, unit)

    def beam_options(self, **overrides: Any) -> Any:
        """Beam ``PipelineOptions`` for this step, from its processing backend."""
        from apache_beam.options.pipeline_options import PipelineOptions

        args = self.backend.beam_args(job_name=f"{self.run_id}-{self.step}")
        return PipelineOptions(args, **overrides)
