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

    @property
    def job_name(self) -> str:
        """This step's Beam job name (the run id names the pipeline); backends with rules for
        names (Dataflow's) derive theirs from it."""
        return f"{self.run_id}-{self.step}"

    def beam_options(self, **overrides: Any) -> Any:
        """Beam ``PipelineOptions`` for this step, from its processing backend."""
        from apache_beam.options.pipeline_options import PipelineOptions

        args = self.backend.beam_args(job_name=self.job_name)
        return PipelineOptions(args, **overrides)

    def beam_job(self, **overrides: Any) -> BeamJob:
        """``with ctx.beam_job() as job:`` build ``job.pipeline``, reading ``job.input(folder)``
        and writing ``job.output(folder)``; on leaving the block the backend runs the job and
        waits for it (cancelling it on Ctrl-C), then the outputs are in their local folders.
        Backends whose workers do not see this machine's files get copies through their
        ``data_location``; the others read and write the folders themselves."""
        return BeamJob(self, self.beam_options(**overrides))


class BeamJob:
    """One data step's Beam job, and where its workers find its data (see ``beam_job``)."""

    def __init__(self, ctx: StepContext, options: Any) -> None:
        import apache_beam as beam

        self.name = ctx.job_name
        self.backend = ctx.backend
        self.pipeline = beam.Pipeline(options=options)
        self.location = self.backend.data_location(self.name)
        self._outputs: list[tuple[str, Path]] = []
        self._staged = 0

    def input(self, folder: Path) -> str:
        """Where the workers read ``folder``: itself, or a copy at the data location."""
        if self.location is None:
            return str(folder)
        target = self._next("in")
        _copy_tree(str(folder), target)
        return target

    def output(self, folder: Path) -> str:
        """Where the workers write what belongs in ``folder`` (copied there after the job)."""
        if self.location is None:
            return str(folder)
        target = self._next("out")
        self._outputs.append((target, folder))
        return target

    def _next(self, kind: str) -> str:
        self._staged += 1
        return join(str(self.location), f"{kind}-{self._staged}")

    def __enter__(self) -> BeamJob:
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        try:
            if kind is None:
                self.backend.run_pipeline(self.pipeline, self.name)
                for source, folder in self._outputs:
                    _copy_tree(source, str(folder))
        finally:
            if self.location is not None:
                _remove(str(self.location))


def join(base: str, *parts: str) -> str:
    """A path or URI below ``base`` (``gs://b/x`` + ``y`` is ``gs://b/x/y``)."""
    return "/".join([base.rstrip("/"), *parts])


def open_binary(path: str, mode: str) -> Any:
    """Open a file to read (``"rb"``) or write (``"wb"``) as it is named: a local path
    directly, a URI (``gs://...``) through Beam's file systems, as a job's workers see it."""
    if "://" not in path:
        if "w" in mode:  # object stores have no folders; a file system needs them made
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return open(path, mode)
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    plain = CompressionTypes.UNCOMPRESSED
    if mode == "rb":
        return FileSystems.open(path, compression_type=plain)
    return FileSystems.create(path, compression_type=plain)


def _copy_tree(source: str, target: str) -> None:
    """Copy every file below ``source`` to the same place below ``target``, through Beam's
    file systems (local folders, ``gs://`` and any other scheme Beam has)."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    plain = CompressionTypes.UNCOMPRESSED
    (found,) = FileSystems.match([join(source, "**")])
    for metadata in found.metadata_list:
        relative = metadata.path[len(source.rstrip("/")) + 1 :]
        destination = join(target, relative)
        if "://" not in destination:
            Path(destination).parent.mkdir(parents=True, exist_ok=True)
        with (
            FileSystems.open(metadata.path, compression_type=plain) as reading,
            FileSystems.create(destination, compression_type=plain) as writing,
        ):
            while chunk := reading.read(8 << 20):
                writing.write(chunk)


def _remove(location: str) -> None:
    """Delete a job's staged data (best effort: a leftover is only storage)."""
    import contextlib

    from apache_beam.io.filesystems import FileSystems

    with contextlib.suppress(Exception):
        (found,) = FileSystems.match([join(location, "**")])
        paths = [m.path for m in found.metadata_list]
        if paths:
            FileSystems.delete(paths)
