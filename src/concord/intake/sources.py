"""Turn paths (files, directories, zip and gzip archives) into seekable byte streams.

An archive is told by its first bytes, whatever its name ("x.csv.gzip", a zip saved without
an extension), or by its name when it is too damaged to show them. Archives are unpacked into
bounded spooled temporary files: a compression bomb is refused with a clear reason once it
passes the size or ratio limit, before it fills memory or disk.
"""

from __future__ import annotations

import contextlib
import gzip
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import BinaryIO

from concord.config import env_bytes, env_int
from concord.errors import ConcordError
from concord.intake.registry import archive_kind, archive_named
from concord.intake.service import Source

MAX_UNPACKED = env_bytes("CONCORD_MAX_UNPACKED_BYTES", 4 * 1024**3)  # an archive, all files
MAX_MEMBERS = env_int("CONCORD_MAX_ARCHIVE_FILES", 1000, minimum=1)
MAX_RATIO = 200  # unpacked / packed; real feeds compress 5-20x
SPOOL = 32 * 1024 * 1024


class ArchiveRefused(ConcordError):
    def __init__(self, message: str) -> None:
        super().__init__(message, 413, "Archive refused")


def _bounded_copy(
    src: BinaryIO,
    packed_size: int,
    name: str,
    budget: int,
    whole: int,
) -> BinaryIO:
    """`src` unpacked into a spooled file, refused past the ratio limit or past `budget`
    (what is left of the `whole` an archive may unpack to)."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115 (handed to the caller)
    total = 0
    by_ratio = max(packed_size, 1) * MAX_RATIO
    limit = min(budget, by_ratio)
    while chunk := src.read(1 << 20):
        total += len(chunk)
        if total > limit:
            out.close()
            if limit == by_ratio:
                raise ArchiveRefused(
                    f"{name}: unpacks to more than {limit} bytes (from {packed_size}); "
                    "refused as a possible compression bomb"
                )
            # the setting to raise: the CLI's own, or that of what a request may send
            setting = (
                "CONCORD_MAX_UNPACKED_BYTES"
                if whole == MAX_UNPACKED
                else "ten times CONCORD_MAX_UPLOAD_BYTES"
            )
            raise ArchiveRefused(
                f"{name}: the archive unpacks to more than {whole} bytes in all ({setting}); "
                "refused as a possible compression bomb"
            )
        out.write(chunk)
    out.seek(0)
    return out  # type: ignore[return-value]


@dataclass(frozen=True)
class Refused:
    """A file that cannot be read (no permission, a broken or refused archive), and why;
    the reason names the file."""

    filename: str
    reason: str


def _from_file(
    path: Path, name: str, whole: int | None = None, hidden: list[str] | None = None
) -> Iterator[Source | Refused]:
    whole = MAX_UNPACKED if whole is None else whole
    if not path.is_file():  # a pipe would wait for a writer for ever
        yield Refused(name, f"{name}: not a regular file (a pipe, a device or a broken link)")
        return
    try:
        stream = path.open("rb")
        try:
            kind = archive_named(stream.read(4), name)
            stream.seek(0)
        except BaseException:
            stream.close()
            raise
        if kind is None:
            yield Source(stream, name)
            return
        stream.close()
        if kind == "zip":
            yield from _from_zip(path, name, whole, hidden)
        else:
            yield _from_gzip(path, name, whole)
    except ConcordError as exc:
        yield Refused(name, exc.message)
    except OSError as exc:
        yield Refused(name, f"{name}: cannot be read ({exc.strerror or exc})")


def _nested(member_name: str) -> Refused:
    return Refused(member_name, f"{member_name}: nested archives are refused")


def _from_zip(
    path: Path, name: str, whole: int, hidden: list[str] | None = None
) -> Iterator[Source | Refused]:
    """Each member of the archive; one that is refused (a nested archive, a possible bomb,
    a damaged member) is a `Refused` in its place, and the other members are still read.
    Hidden members are skipped as in a folder (and added to `hidden` when it is given)."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ConcordError(f"{name}: not a valid zip archive ({exc})") from None
    with archive:
        files = [info for info in archive.infolist() if not info.is_dir()]
        # counted before anything else is done per member: hidden ones cost work too
        if len(files) > MAX_MEMBERS:
            raise ArchiveRefused(
                f"{name}: the archive holds {len(files)} files, more than the "
                f"{MAX_MEMBERS} read from one archive (CONCORD_MAX_ARCHIVE_FILES): unpack it "
                "and give its folder"
            )
        members: list[zipfile.ZipInfo] = []
        skipped: list[str] = []
        for info in files:
            if _hidden(PurePosixPath(info.filename)):
                skipped.append(f"{name}!{info.filename}")
            else:
                members.append(info)
        if hidden is not None:
            hidden.extend(skipped)
        if not members and skipped:
            raise ConcordError(f"{name}: the archive holds hidden files only, which are not read")
        if not members:
            raise ConcordError(f"{name}: the archive holds no file")
        budget = whole
        for info in members:
            member_name = f"{name}!{info.filename}"
            if info.filename.lower().endswith((".zip", ".gz")):
                yield _nested(member_name)
                continue
            try:
                with archive.open(info) as member:
                    # an archive inside, whatever its name, is refused before it is unpacked
                    nested = archive_kind(member.read(4), info.filename) is not None
                    if not nested:
                        member.seek(0)
                        stream = _bounded_copy(
                            member, info.compress_size, member_name, budget, whole
                        )
                if nested:
                    yield _nested(member_name)
                    continue
                budget -= stream.seek(0, 2)
                stream.seek(0)
            except ConcordError as exc:
                yield Refused(member_name, exc.message)
                continue
            except (
                zipfile.BadZipFile,
                zlib.error,
                OSError,
                EOFError,
                RuntimeError,
                ValueError,
            ) as exc:
                # damaged, encrypted or of an unsupported compression
                said = "it is encrypted" if info.flag_bits & 0x1 else str(exc)
                yield Refused(member_name, f"{member_name}: cannot be unpacked ({said})")
                continue
            yield Source(stream, member_name)


def _unpacked_name(name: str) -> str:
    """The name of what a gzip file holds: "scan.csv.gz" and "scan.csv.gzip" hold
    "scan.csv"; a name without either ending is kept."""
    lower = name.lower()
    for ending in (".gz", ".gzip"):
        if lower.endswith(ending) and len(name) > len(ending):
            return name[: -len(ending)]
    return name


def _from_gzip(path: Path, name: str, whole: int) -> Source:
    with gzip.open(path, "rb") as packed:
        try:
            stream = _bounded_copy(packed, path.stat().st_size, name, whole, whole)
        except (OSError, EOFError, zlib.error) as exc:  # zlib.error: damaged compressed data
            raise ConcordError(f"{name}: not a valid gzip file ({exc})") from None
    inner = _unpacked_name(name)
    if archive_kind(stream.read(4), inner) is not None:  # e.g. a .zip.gz, a .gz.gz
        stream.close()
        raise ConcordError(f"{name}: nested archives are refused")
    stream.seek(0)
    return Source(stream, inner)


def _hidden(relative: PurePath) -> bool:
    # an editor's swap file, .DS_Store, what a .git folder holds, the resource forks a Mac
    # adds to a zip: never a report
    return any(part.startswith(".") or part == "__MACOSX" for part in relative.parts)


def _folder_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """The files under `folder`, in order: those read, and the hidden ones, skipped. What
    is neither a file nor a folder (a pipe, a broken link) is among those read, to be
    refused in its place rather than passed over in silence."""
    found = sorted(p for p in folder.rglob("*") if not p.is_dir())
    hidden = [p for p in found if _hidden(p.relative_to(folder))]
    return [p for p in found if not _hidden(p.relative_to(folder))], hidden


def _names_in(folder: Path, children: list[Path]) -> list[str]:
    top = Path(folder.resolve().name)  # "." and "../x" name a folder too
    return [(top / child.relative_to(folder)).as_posix() for child in children]


def open_sources(
    paths: Iterable[str], hidden: list[str] | None = None
) -> Iterator[Source | Refused]:
    """Every file under `paths`, in order; a file that cannot be opened is a `Refused` in
    its place, so the others are still read. A path that does not exist, or a folder with
    no file to read, is a mistake in the command (a mistyped name): it stops everything
    before anything is read. The hidden files of the folders (a name starting with a dot,
    or in such a folder), which are skipped, are added to `hidden` when it is given, named
    as the files read are.

    A file is named as the command names it, without the folders above: a file given
    alone by its name, a file found in a folder by its path from that folder on
    ("feeds/scan_rdp.csv"). The name is stored with the submission and seen by the
    organisation's analysts, to whom the submitter's own folders mean nothing."""
    paths = list(paths)
    listed: dict[str, list[Path]] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ConcordError(f"{raw}: no such file or directory")
        if path.is_dir():
            read, skipped = _folder_files(path)
            if hidden is not None:
                hidden.extend(_names_in(path, skipped))
            if not read and skipped:
                raise ConcordError(
                    f"{raw}: no file found in this folder but hidden ones (named with a "
                    "leading dot), which are not read"
                )
            if not read:
                raise ConcordError(f"{raw}: no file found in this folder")
            listed[raw] = read
    for raw in paths:
        path = Path(raw)
        if raw in listed:
            for child, name in zip(listed[raw], _names_in(path, listed[raw]), strict=True):
                yield from _from_file(child, name, hidden=hidden)
        else:
            yield from _from_file(path, path.name, hidden=hidden)


# Where `open_file` adds the hidden files it skips when its caller gives it no list of its own
_hidden_found: ContextVar[list[str] | None] = ContextVar("hidden_found", default=None)


@contextlib.contextmanager
def noting_hidden(into: list[str]) -> Iterator[None]:
    """Within the block, the hidden files that `open_file` skips in archives are added to
    `into`: for a caller that does not open the files itself (a mail's attachments)."""
    token = _hidden_found.set(into)
    try:
        yield
    finally:
        _hidden_found.reset(token)


def open_file(
    path: Path, name: str, whole: int, hidden: list[str] | None = None
) -> Iterator[Source | Refused]:
    """The files `path` holds (itself, or an archive's members), named after `name`; an
    archive may unpack to `whole` bytes at most. The hidden members it skips are added to
    `hidden` (else to the list of `noting_hidden`, if any)."""
    if hidden is None:
        hidden = _hidden_found.get()
    return _from_file(path, name, min(whole, MAX_UNPACKED), hidden)
