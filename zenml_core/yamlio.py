"""Reading YAML written by people: every malformed input is a clear error, never a traceback,
and nothing is silently taken (duplicate keys, alias bombs, binary files, endless nesting)."""

from __future__ import annotations

from typing import Any

from zenml_core.exceptions import ConfigError, ZenMLError

MAX_DEPTH = 64
MAX_BYTES = 10 * 1024 * 1024


def load_yaml(text: str | bytes, what: str, error: type[ZenMLError] = ConfigError) -> Any:
    """Parse ``text`` (``what`` names it in messages: "pipeline.yaml", "the project config")."""
    import yaml

    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise error(
                f"{what} is {len(text)} bytes, over the {MAX_BYTES} bytes a YAML file "
                "may have here."
            )
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as problem:
            raise error(
                f"{what} is not UTF-8 text (byte {problem.start}): is it a YAML file?"
            ) from None
    if "\0" in text:
        raise error(f"{what} holds NUL characters: it is a binary file, not YAML.")
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except _Refused as problem:
        raise error(f"{what}: {problem}") from None
    except yaml.YAMLError as problem:
        raise error(f"{what} does not parse as YAML: {problem}") from None
    except RecursionError:
        raise error(f"{what} nests too deeply to be a configuration.") from None


class _Refused(Exception):
    pass


def _strict_loader() -> type:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """SafeLoader without aliases (a few hundred bytes of them can expand to gigabytes),
        with duplicate keys refused and a nesting limit."""

        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _Refused(
                    f"line {mark.line + 1}: YAML aliases (*name) are not accepted here; write "
                    "the value out"
                )
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                    raise _Refused(f"line {mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in seen:
                        raise _Refused(
                            f"line {key_node.start_mark.line + 1}: key {key!r} appears twice in "
                            f"one mapping (first on line {seen[key] + 1}); keep one"
                        )
                    seen[key] = key_node.start_mark.line
                except TypeError:
                    raise _Refused(
                        f"line {key_node.start_mark.line + 1}: a mapping key must be plain text"
                    ) from None
            return super().construct_mapping(node, deep)

    return StrictLoader


class _LazyLoader:
    loader: type | None = None

    def __call__(self, stream: Any) -> Any:
        if self.loader is None:
            self.loader = _strict_loader()
        return self.loader(stream)


_StrictLoader: Any = _LazyLoader()
