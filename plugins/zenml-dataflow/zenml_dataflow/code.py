"""The run's code package as a wheel, the form Dataflow installs on its workers.

A data step's Beam transforms are pickled by reference to their modules, so a step written in
the user's project (installed nowhere) needs its modules on every worker. Dataflow's supported
ways are a staged package (``--extra_package``, pip-installed on each worker before it takes
work) or an image with the code baked in. We ship the same files as the run's code package
(``zenml_core.pipeline.code``: the project's files, .gitignore respected, size-capped), as a
pure-Python wheel named after their SHA-256: the same code is the same file, staged once and
cached by the workers, and a change is a new name. Users whose code lives in their own image
set ``ship_code=False``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zipfile
from pathlib import Path

DISTRIBUTION = "zenml_code"


def code_wheel(root: Path, folder: Path) -> Path:
    """Write (once) and return the wheel of ``root``'s project files under ``folder``."""
    from zenml_core.pipeline.code import build_archive

    archive = build_archive(root)
    digest = hashlib.sha256(archive).hexdigest()
    version = f"0+{digest[:16]}"
    wheel = folder / f"{DISTRIBUTION}-{version}-py3-none-any.whl"
    if wheel.is_file():
        return wheel
    folder.mkdir(parents=True, exist_ok=True)
    info = f"{DISTRIBUTION}-{version}.dist-info"
    records: list[str] = []
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(archive)) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target,
    ):

        def add(name: str, data: bytes) -> None:
            target.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
            hashed = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            records.append(f"{name},sha256={hashed.decode()},{len(data)}")

        for entry in source.infolist():
            add(entry.filename, source.read(entry))
        add(
            f"{info}/METADATA",
            f"Metadata-Version: 2.1\nName: {DISTRIBUTION}\nVersion: {version}\n".encode(),
        )
        add(
            f"{info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: zenml-dataflow\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n",
        )
        records.append(f"{info}/RECORD,,")
        target.writestr(
            zipfile.ZipInfo(f"{info}/RECORD", date_time=(1980, 1, 1, 0, 0, 0)),
            "\n".join(records) + "\n",
        )
    partial = wheel.with_name(f".{wheel.name}.{os.getpid()}")
    partial.write_bytes(buffer.getvalue())
    partial.replace(wheel)  # whole or not at all: parallel steps may write the same wheel
    return wheel


def code_packages() -> list[str]:
    """The running project's code as a wheel to stage, or nothing when every step comes from
    an installed distribution (then it is in the image)."""
    import tempfile

    from zenml_core.pipeline.code import running_code_root

    root = running_code_root()
    if root is None:
        return []
    folder = Path(tempfile.gettempdir()) / f"zenml-dataflow-code-{os.getuid()}"
    return [str(code_wheel(root, folder))]
