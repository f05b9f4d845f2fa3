"""Errors users see. Each carries an HTTP status and, where known, where the fault is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

_T = TypeVar("_T")


@dataclass(frozen=True)
class FaultLocation:
    """Where a fault is: a file and line for text input, a JSON pointer for documents,
    a field name for forms and parameters."""

    source: str | None = None
    line: int | None = None
    pointer: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.source:
            parts.append(self.source)
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.pointer is not None:
            parts.append(self.pointer or "/")
        if self.field:
            parts.append(self.field)
        return ":".join(parts) if parts else "input"

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class ConcordError(Exception):
    message: str
    status: int = 400
    title: str = "Bad request"
    locations: list[FaultLocation] = field(default_factory=list)
    # further faults of the same input, each with its own message and place: a form or a
    # request body is answered with all of its faults at once (see `Faults`)
    more: list[ConcordError] = field(default_factory=list)

    def __str__(self) -> str:
        if self.locations:
            return f"{self.locations[0]}: {self.message}"
        return self.message


class InvalidInput(ConcordError):
    def __init__(self, message: str, *locations: FaultLocation) -> None:
        super().__init__(message, 422, "Invalid input", list(locations))


class ConfigurationError(ConcordError):
    """A CONCORD_* setting that cannot be used: the operator's to fix, for every input alike."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 500, "Configuration error")


class NotFound(ConcordError):
    def __init__(self, message: str) -> None:
        super().__init__(message, 404, "Not found")


class Conflict(ConcordError):
    def __init__(self, message: str) -> None:
        super().__init__(message, 409, "Conflict")


class Forbidden(ConcordError):
    def __init__(self, message: str) -> None:
        super().__init__(message, 403, "Forbidden")


class Unauthorized(ConcordError):
    def __init__(self, message: str = "sign in or send an API token") -> None:
        super().__init__(message, 401, "Unauthorized")


class PreconditionFailed(ConcordError):
    """A conditional request (`If-Match`) whose condition no longer holds."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 412, "Precondition failed")


def field_value(read: Callable[[Any], _T], value: Any, field: str) -> _T:
    """What `read` makes of `value`; a ValueError it raises is the fault of `field`."""
    try:
        return read(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), FaultLocation(field=field)) from None


def given_value(read: Callable[[Any], _T], value: Any, field: str) -> _T | None:
    """`field_value`, or None when nothing is given (an optional field left empty)."""
    return field_value(read, value, field) if value else None


class Faults:
    """The faults of one input, gathered so that all are told at once rather than one per
    attempt: each check's value, or `instead` when it fails; `raise_any` then raises the
    first fault with the others in its `more`."""

    def __init__(self) -> None:
        self.found: list[InvalidInput] = []

    def check(self, read: Callable[[], _T], instead: _T) -> _T:
        try:
            return read()
        except InvalidInput as exc:
            # a check that gathers faults of its own gives each of them, not its first alone
            more = [m for m in exc.more if isinstance(m, InvalidInput)]
            exc.more = []
            self.found += [exc, *more]
            return instead

    @property
    def fields(self) -> set[str]:
        """The fields found at fault: a rule across fields is left to be told once each of
        them reads."""
        return {loc.field for fault in self.found for loc in fault.locations if loc.field}

    def raise_any(self) -> None:
        if self.found:
            first, *others = self.found
            first.more = others
            raise first
