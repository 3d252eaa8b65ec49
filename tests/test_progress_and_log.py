"""A run's progress (one printer, lines where there is no terminal) and its log (libraries'
notices kept out of the run's output)."""

from __future__ import annotations

import io
import sys
import textwrap

from zenml_core import Pipeline, step
from zenml_core.pipeline.context import StepContext
from zenml_core.progress import Printer
from zenml_core.runlog import foreign, log_path


@step
def epochs(ctx: StepContext, count: int = 3) -> int:
    for done in range(1, count + 1):
        ctx.progress(done, count, "epochs", f"loss {1 / done:.2f}")
    return count


def test_a_step_s_progress_reaches_the_printer_and_its_last_state_is_shown(project):
    stream = io.StringIO()
    pipeline = Pipeline("progress")
    pipeline.add_step(epochs(count=3))
    pipeline.run(progress=Printer(stream))
    lines = [line.split() for line in stream.getvalue().splitlines()]
    assert lines[0][:3] == ["[", "run]", "epochs"]
    progress = [line for line in lines if line[1] == "...]"]
    # no terminal: the first report, then (held back) the last one before the step's end
    assert [p[3:5] for p in progress] == [["1/3", "epochs"], ["3/3", "epochs"]]
    assert lines[-1][:3] == ["[", "done]", "epochs"]


def test_progress_outside_a_bound_step_goes_nowhere():
    from zenml_core import progress

    progress.update("no-run", "no-step", 1, 2, "rows")  # a Beam worker process: no printer
    progress.count("no-run", "no-step", 5)


FOREIGN_MODULE = """
import logging
import warnings

warnings.warn("the library's own notice", FutureWarning)
logging.warning("apitools-like notice from the library")
"""


@step
def imports_a_noisy_library(ctx: StepContext, where: str) -> int:
    import importlib
    import warnings

    sys.path.insert(0, where)
    try:
        importlib.import_module("google.noisy_for_zenml_test")
    finally:
        sys.path.remove(where)
    warnings.warn("the user's own warning", UserWarning, stacklevel=1)
    return 1


def test_libraries_notices_go_to_the_run_log_and_the_user_s_stay(
    project, tmp_path, capsys, recwarn
):
    site = tmp_path / "lib" / "site-packages"
    (site / "google").mkdir(parents=True)
    (site / "google" / "noisy_for_zenml_test.py").write_text(textwrap.dedent(FOREIGN_MODULE))
    assert foreign(str(site / "google" / "noisy_for_zenml_test.py"))
    assert not foreign(str(tmp_path / "my_project" / "google" / "x.py"))  # not installed
    saved = sys.modules.pop("google", None)  # the fake package, not an installed google
    pipeline = Pipeline("noisy")
    pipeline.add_step(imports_a_noisy_library(where=str(site)))
    try:
        result = pipeline.run()
    finally:
        sys.modules.pop("google.noisy_for_zenml_test", None)
        sys.modules.pop("google", None)
        if saved is not None:
            sys.modules["google"] = saved
    shown = [str(w.message) for w in recwarn]
    assert "the user's own warning" in shown  # the user's warning is shown as ever
    assert "the library's own notice" not in shown
    captured = capsys.readouterr()
    assert "the library's own notice" not in captured.err + captured.out
    assert "apitools-like notice" not in captured.err + captured.out
    log = log_path(result.run_id).read_text()
    assert "FutureWarning" in log and "the library's own notice" in log
    assert "apitools-like notice from the library" in log
