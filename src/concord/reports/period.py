"""Report periods: a day, an ISO week, a calendar month or a custom range of whole days (UTC).

The previous period, against which changes are computed, is the one just before: the day
before, the week before, the calendar month before, or a custom range of the same length.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from concord.errors import FaultLocation, InvalidInput
from concord.reports.model import Period

_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})$")
MAX_DAYS = 3660
FORMS = "YYYY-MM-DD, YYYY-Www, YYYY-MM or YYYY-MM-DD..YYYY-MM-DD"


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(), tzinfo=UTC)


def _invalid(text: str, why: str = "") -> InvalidInput:
    reason = f"{text!r} is not a period; use {FORMS}" + (f" ({why})" if why else "")
    return InvalidInput(reason, FaultLocation(field="period"))


def _week_label(d: date) -> str:
    year, week, _ = d.isocalendar()
    return f"{year}-W{week:02d}"


def _range_label(first: date, last: date) -> str:
    return f"{first.isoformat()}..{last.isoformat()}"


def day(d: date) -> Period:
    before = d - timedelta(days=1)
    return Period(
        "day",
        d.isoformat(),
        _midnight(d),
        _midnight(d + timedelta(days=1)),
        _midnight(before),
        before.isoformat(),
    )


def week(year: int, number: int) -> Period:
    monday = date.fromisocalendar(year, number, 1)
    before = monday - timedelta(days=7)
    return Period(
        "week",
        _week_label(monday),
        _midnight(monday),
        _midnight(monday + timedelta(days=7)),
        _midnight(before),
        _week_label(before),
    )


def month(year: int, number: int) -> Period:
    first = date(year, number, 1)
    try:
        following = date(year + (number == 12), number % 12 + 1, 1)
        before = date(year - (number == 1), (number - 2) % 12 + 1, 1)
    except ValueError:  # year 0 or 10000: as a day or a week past the ends is told
        raise OverflowError(f"{year:04d}-{number:02d}") from None
    return Period(
        "month",
        f"{year:04d}-{number:02d}",
        _midnight(first),
        _midnight(following),
        _midnight(before),
        f"{before.year:04d}-{before.month:02d}",
    )


def custom(first: date, last: date) -> Period:
    """Whole days from `first` to `last`, both included."""
    if last < first:
        raise _invalid(_range_label(first, last), "the end is before the start")
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise _invalid(_range_label(first, last), f"at most {MAX_DAYS} days")
    before_first = first - timedelta(days=days)
    return Period(
        "custom",
        _range_label(first, last),
        _midnight(first),
        _midnight(last + timedelta(days=1)),
        _midnight(before_first),
        _range_label(before_first, first - timedelta(days=1)),
    )


def parse(text: str) -> Period:
    """A period from its label: 2024-07-15, 2024-W28, 2024-07 or 2024-07-01..2024-07-10."""
    cleaned = (text or "").strip()
    try:
        if m := _DAY.match(cleaned):
            return day(date(int(m[1]), int(m[2]), int(m[3])))
        if m := _WEEK.match(cleaned):
            return week(int(m[1]), int(m[2]))
        if m := _MONTH.match(cleaned):
            return month(int(m[1]), int(m[2]))
        if m := _RANGE.match(cleaned):
            return custom(date.fromisoformat(m[1]), date.fromisoformat(m[2]))
    except ValueError as exc:  # month 13, week 54, February 30 ...
        raise _invalid(cleaned, str(exc)) from None
    except OverflowError:  # the period or the one before it runs off the calendar (year 1, 9999)
        raise _invalid(cleaned, "too close to the ends of the calendar") from None
    raise _invalid(cleaned)


def previous_month(now: datetime) -> Period:
    """The calendar month before the one `now` falls in (for the monthly run)."""
    first = now.astimezone(UTC).date().replace(day=1)
    before = first - timedelta(days=1)
    return month(before.year, before.month)
