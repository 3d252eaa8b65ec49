"""Code blocks of the docs, for tests that run them as printed."""

from __future__ import annotations

from pathlib import Path

PLUGINS_DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def plugins_doc_file(name: str) -> str:
    """The python block of docs/plugins.md whose first line is ``# NAME``."""
    for block in PLUGINS_DOC.read_text().split("```python\n")[1:]:
        code = block.split("```", 1)[0]
        if code.startswith(f"# {name}\n"):
            return code
    raise AssertionError(f"docs/plugins.md has no block for {name}")
