"""Turn paths (files, directories, .zip and .gz archives) into seekable byte streams.

Archives are unpacked into bounded spooled temporary files: a compression bomb is refused
with a clear reason once it passes the size or ratio limit, before it fills memory or disk.
"""

from __future__ import annotations

import gzip
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from concord.config import env_bytes, env_int
from concord.errors import ConcordError
from concord.intake.service import Source

MAX_UNPACKED = env_bytes("CONCORD_MAX_UNPACKED_BYTES", 4 * 1024**3)  # an archive, all files
MAX_MEMBERS = env_int("CONCORD_MAX_ARCHIVE_FILES", 1000, minimum=1)
MAX_RATIO = 200  # unpacked / packed; real feeds compress 5-20x
SPOOL = 32 * 1024 * 1024


class ArchiveRefused(ConcordError):
    def __init__(self, message: str) -> None:
        super().__init__(message, 413, "Archive refused")


def _bounded_copy(
    src: BinaryIO, packed_size: int, name: str, budget: int = MAX_UNPACKED
) -> BinaryIO:
    """`src` unpacked into a spooled file, refused past the ratio limit or past `budget`
    (what is left of the archive's MAX_UNPACKED)."""
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
            raise ArchiveRefused(
                f"{name}: the archive unpacks to more than {MAX_UNPACKED} bytes in all "
                "(CONCORD_MAX_UNPACKED_BYTES); refused as a possible compression bomb"
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


def _from_file(path: Path, name: str) -> Iterator[Source | Refused]:
    lower = path.name.lower()
    try:
        if lower.endswith(".zip"):
            yield from _from_zip(path, name)
        elif lower.endswith(".gz"):
            yield _from_gzip(path, name)
        else:
            yield Source(path.open("rb"), name)
    except ConcordError as exc:
        yield Refused(name, exc.message)
    except OSError as exc:
        yield Refused(name, f"{name}: cannot be read ({exc.strerror or exc})")


def _from_zip(path: Path, name: str) -> Iterator[Source | Refused]:
    """Each member of the archive; one that is refused (a nested archive, a possible bomb,
    a damaged member) is a `Refused` in its place, and the other members are still read."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ConcordError(f"{name}: not a valid zip archive ({exc})") from None
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if not members:
            raise ConcordError(f"{name}: the archive holds no file")
        if len(members) > MAX_MEMBERS:
            raise ArchiveRefused(
                f"{name}: the archive holds {len(members)} files, more than the "
                f"{MAX_MEMBERS} read from one archive (CONCORD_MAX_ARCHIVE_FILES): unpack it "
                "and give its folder"
            )
        budget = MAX_UNPACKED
        for info in members:
            member_name = f"{name}!{info.filename}"
            if info.filename.lower().endswith((".zip", ".gz")):
                yield Refused(member_name, f"{member_name}: nested archives are refused")
                continue
            try:
                with archive.open(info) as member:
                    stream = _bounded_copy(member, info.compress_size, member_name, budget)
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


def _from_gzip(path: Path, name: str) -> Source:
    with gzip.open(path, "rb") as packed:
        try:
            stream = _bounded_copy(packed, path.stat().st_size, name)
        except (OSError, EOFError, zlib.error) as exc:  # zlib.error: damaged compressed data
            raise ConcordError(f"{name}: not a valid gzip file ({exc})") from None
    return Source(stream, name[:-3])


def open_sources(paths: Iterable[str]) -> Iterator[Source | Refused]:
    """Every file under `paths`, in order; a file that cannot be opened is a `Refused` in
    its place, so the others are still read. A path that does not exist is a mistake in
    the command: it stops everything before anything is read.

    A file is named as the command names it, without the folders above: a file given
    alone by its name, a file found in a folder by its path from that folder on
    ("feeds/scan_rdp.csv"). The name is stored with the submission and seen by the
    organisation's analysts, to whom the submitter's own folders mean nothing."""
    paths = list(paths)
    for raw in paths:
        if not Path(raw).exists():
            raise ConcordError(f"{raw}: no such file or directory")
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            folder = Path(path.resolve().name)  # "." and "../x" name a folder too
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if not child.name.startswith("."):
                    name = (folder / child.relative_to(path)).as_posix()
                    yield from _from_file(child, name)
        else:
            yield from _from_file(path, path.name)
