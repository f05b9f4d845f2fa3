"""The known intake formats, in the order they are tried when the format is not declared."""

from __future__ import annotations

from functools import lru_cache

from concord.errors import ConcordError
from concord.intake.readers import Reader

_MODULES = (
    ("concord.intake.readers.stix", "READER"),
    ("concord.intake.readers.misp", "READER"),
    ("concord.intake.readers.intelmq", "READER"),
    ("concord.intake.readers.email", "READER"),
    ("concord.intake.readers.csvfeed", "READER"),
    ("concord.intake.readers.csvfeed", "CSV_READER"),
)


@lru_cache(maxsize=1)
def readers() -> dict[str, Reader]:
    import importlib

    found: dict[str, Reader] = {}
    for module_name, attribute in _MODULES:
        reader = getattr(importlib.import_module(module_name), attribute)
        found[reader.name] = reader
    return found


class UnsupportedFormat(ConcordError):
    def __init__(self, message: str) -> None:
        supported = ", ".join(sorted(readers()))
        super().__init__(
            f"{message}; supported formats: {supported}", 415, "Unsupported media type"
        )


def choose(head: bytes, filename: str, declared: str | None) -> Reader:
    known = readers()
    if declared:
        reader = known.get(declared.strip().lower())
        if reader is None:
            raise UnsupportedFormat(f"unknown format {declared!r}")
        return reader
    for reader in known.values():
        if reader.sniff(head, filename):
            return reader
    raise UnsupportedFormat(f"cannot tell the format of {filename!r}")
