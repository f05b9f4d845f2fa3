"""The known intake formats, in the order they are tried when the format is not declared.

Besides the built-in readers, every YAML feed profile in the profiles folder
(`CONCORD_PROFILES_DIR`, by default `profiles/` in CONCORD_HOME) is a format of its own,
named by the profile. The folder is read at each use, so a new profile needs no restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from concord.errors import ConcordError, FaultLocation
from concord.intake.readers import Reader, ReaderError
from concord.intake.records import ReadError

_MODULES = (
    ("concord.intake.readers.stix", "READER"),
    ("concord.intake.readers.misp", "READER"),
    ("concord.intake.readers.intelmq", "READER"),
    ("concord.intake.readers.email", "READER"),
    ("concord.intake.readers.spamhaus", "READER"),
    ("concord.intake.readers.csvprofiles", "READER"),
    ("concord.intake.readers.csvprofiles", "CSV_READER"),
)
MAX_PROFILE_BYTES = 256 * 1024
SNIFF_BYTES = 65536  # what a file's format is told by


@lru_cache(maxsize=1)
def builtin_readers() -> dict[str, Reader]:
    import importlib

    found: dict[str, Reader] = {}
    for module_name, attribute in _MODULES:
        reader = getattr(importlib.import_module(module_name), attribute)
        found[reader.name] = reader
    return found


@lru_cache(maxsize=1)
def builtin_profile_readers() -> dict[str, Reader]:
    """Each built-in CSV profile by its name, for a sender who declares it (`--format
    cert-eu`) when detection cannot tell the feed; detection itself goes through "csv"."""
    from concord.intake.readers.csvfeed import CsvFeedReader
    from concord.intake.readers.csvprofiles import PROFILES

    return {name: CsvFeedReader(profile) for name, profile in PROFILES.items()}


def builtin_reader(name: str) -> Reader:
    """A built-in format or built-in CSV profile by name (KeyError if neither)."""
    return builtin_readers().get(name) or builtin_profile_readers()[name]


@dataclass(frozen=True)
class ProfileProblem:
    path: str
    reason: str


def profile_reader(path: Path) -> Reader:
    """The reader of one YAML feed profile; ReaderError names what is wrong with it."""
    from concord.intake.readers.csvfeed import CsvFeedReader

    try:
        if path.stat().st_size > MAX_PROFILE_BYTES:
            raise ReaderError(f"larger than {MAX_PROFILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:  # its reason without the errno and path Python puts around it
        raise ReaderError(f"cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ReaderError("cannot read it: it is not UTF-8 text") from None
    reader = CsvFeedReader.from_yaml(text)
    if reader.name in builtin_readers().keys() | builtin_profile_readers().keys():
        raise ReaderError(f"the name {reader.name!r} is a built-in format; choose another")
    return reader


def user_readers(folder: Path | None = None) -> tuple[dict[str, Reader], list[ProfileProblem]]:
    """The profiles folder's readers, and the files that could not be used (and why)."""
    if folder is None:
        from concord.config import get_settings

        folder = get_settings().feed_profiles
    found: dict[str, Reader] = {}
    problems: list[ProfileProblem] = []
    if not folder.is_dir():
        return found, problems
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
            continue
        try:
            reader = profile_reader(path)
        except ReaderError as exc:
            problems.append(ProfileProblem(path.name, str(exc)))
            continue
        if reader.name in found:
            problems.append(ProfileProblem(path.name, f"a second profile named {reader.name!r}"))
            continue
        found[reader.name] = reader
    return found, problems


def readers() -> dict[str, Reader]:
    """Every format: the built-in ones first, then the deployment's profiles."""
    return {**builtin_readers(), **user_readers()[0]}


class UnsupportedFormat(ConcordError):
    def __init__(self, message: str, *locations: FaultLocation) -> None:
        # the built-in CSV profiles can be declared too, though detection finds them itself
        supported = ", ".join([*sorted(readers()), *sorted(builtin_profile_readers())])
        super().__init__(
            f"{message}; supported formats: {supported}",
            415,
            "Unsupported media type",
            list(locations),
        )


class WrongFormat(UnsupportedFormat):
    """A declared format that cannot read even the start of a file which detection tells as
    another format: said as such, rather than as a receipt of one malformed record."""

    def __init__(self, declared: str, detected: str, *locations: FaultLocation) -> None:
        ConcordError.__init__(
            self,
            f"this file is not {declared} (it looks like {detected}): choose the format it is "
            "in, or let the format be detected",
            415,
            "Unsupported media type",
            list(locations),
        )


class NestedTooDeep(UnsupportedFormat):
    """A JSON document of no declared format nested deeper than the readers read: refused
    for that, as a declared format would say, rather than as a file of no known format."""

    def __init__(self, filename: str, line: int) -> None:
        from concord.intake.readers.values import MAX_DEPTH

        ConcordError.__init__(
            self,
            f"JSON nested deeper than {MAX_DEPTH} levels; refusing to read it",
            422,
            "Invalid input",
            [FaultLocation(source=filename, line=line)],
        )


# The first bytes of the archives `concord ingest` unpacks, which a single upload does not.
_ARCHIVES = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"PK\x05\x06": "zip"}
# Documents kept in a zip container: files of their own, not archives of reports.
ZIP_DOCUMENTS = (".docx", ".xlsx", ".pptx", ".odt", ".ods", ".odp", ".epub", ".jar", ".apk")


def archive_kind(head: bytes, filename: str) -> str | None:
    """The kind of archive ("zip", "gzip") a file starting with `head` is, or None for a
    file that is no archive of files (a .docx is a zip of its own parts)."""
    for magic, kind in _ARCHIVES.items():
        if head.startswith(magic):
            if kind == "zip" and filename.lower().endswith(ZIP_DOCUMENTS):
                return None
            return kind
    return None


def archive_named(head: bytes, filename: str) -> str | None:
    """The kind of archive by the first bytes, else by the name: a damaged archive whose
    first bytes are lost is still said to be one, and told that it cannot be opened, on
    every channel alike."""
    kind = archive_kind(head, filename)
    if kind is None and filename.lower().endswith(".zip"):
        return "zip"
    if kind is None and filename.lower().endswith(".gz"):
        return "gzip"
    return kind


def _too_deep(head: bytes) -> int | None:
    """When `head` starts a JSON document whose brackets (outside strings) nest deeper than
    the readers read, the line where they do; else None."""
    from concord.intake.readers.values import MAX_DEPTH

    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] not in (b"{", b"["):
        return None
    depth = 0
    in_string = escaped = False
    for at, byte in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                return head.count(b"\n", 0, len(head) - len(text) + at) + 1
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
            if depth <= 0:
                return None  # the document ended within the head
    return None


def known_format(declared: str) -> Reader:
    """The reader of a format named by the user, or UnsupportedFormat saying it is not one."""
    name = declared.strip().lower()
    reader = readers().get(name) or builtin_profile_readers().get(name)
    if reader is None:
        problems = [p for p in user_readers()[1] if name in p.path]
        hint = "".join(f"; profile {p.path}: {p.reason}" for p in problems)
        raise UnsupportedFormat(f"unknown format {declared!r}{hint}", FaultLocation(field="format"))
    return reader


def choose(head: bytes, filename: str, declared: str | None) -> Reader:
    known = readers()
    if declared:
        name = declared.strip().lower()
        reader = known_format(declared)
        if name not in known:
            # A built-in profile declared: when detection would pick that very profile, read
            # it as detection does, so the file is one submission either way (sent again
            # with its format named, it changes nothing).
            from concord.intake.readers.csvfeed import ProfileChoosingReader

            for chooser in known.values():
                if isinstance(chooser, ProfileChoosingReader) and (
                    chooser.chosen(head, filename) == name
                ):
                    return chooser
        return reader
    for reader in known.values():
        if reader.sniff(head, filename):
            return reader
    kind = archive_kind(head, filename)
    if kind is not None:
        raise UnsupportedFormat(
            f"{filename!r} is a {kind} archive: unpack it and send its files, or give it to "
            "`concord ingest`, which unpacks .zip and .gz"
        )
    line = _too_deep(head)
    if line is not None:
        raise NestedTooDeep(filename, line)
    raise UnsupportedFormat(f"cannot tell the format of {filename!r}")


def detected(head: bytes, filename: str) -> str | None:
    """The format detection picks for a file starting with `head` (a built-in CSV profile by
    its own name), or None."""
    from concord.intake.readers.csvfeed import ProfileChoosingReader

    for reader in readers().values():
        if reader.sniff(head, filename):
            if isinstance(reader, ProfileChoosingReader):
                return reader.chosen(head, filename) or reader.name
            return reader.name
    return None


def _at_start(error: ReadError) -> bool:
    where = error.location
    return where.line == 1 or (where.line is None and where.pointer in ("", "/"))


def refuse_misdeclared(reader: Reader, head: bytes, stream: BinaryIO, filename: str) -> None:
    """Raise WrongFormat when `reader`, the declared format, does not recognise the file, which
    detection tells as another format, and cannot read its start either: its first item is an
    error at line 1 or over the whole document (a JSON document that does not parse). Only
    then: a declared format may well read a file that detection does not recognise. The
    stream is left at its start."""
    if reader.sniff(head, filename):
        return
    other = detected(head, filename)
    if other is None or other == reader.name:
        return
    items = reader.read(stream, filename)
    try:
        first = next(items, None)
        # a document reader stops after an error that refuses the whole document
        whole = isinstance(first, ReadError) and next(items, None) is None
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()
        stream.seek(0)
    if isinstance(first, ReadError) and (whole or _at_start(first)):
        raise WrongFormat(reader.name, other, FaultLocation(field="format"), first.location)
