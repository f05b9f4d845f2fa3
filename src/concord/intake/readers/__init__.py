"""Intake readers: one module per format, each a `Reader` with the same interface.

A reader's `read` is a generator over a binary stream, so that a feed of millions of rows
passes through in bounded memory. It never raises on bad input: it yields `ReadError`s with
the location of the fault and goes on where it can.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import BinaryIO

from concord.intake.records import ReadItem


class ReaderError(Exception):
    """A reader could not start at all (e.g. a profile file is invalid)."""


class Reader(abc.ABC):
    #: the format name users pass as --format
    name: str
    #: one line for help texts and the 415 answer
    description: str

    @abc.abstractmethod
    def sniff(self, head: bytes, filename: str) -> bool:
        """Whether the first bytes (up to 64 KiB) and the file name look like this format."""

    @abc.abstractmethod
    def read(self, stream: BinaryIO, source: str) -> Iterator[ReadItem]:
        """Yield records, errors, and the records skipped as naming nothing to take in;
        `source` names the input in error locations."""
