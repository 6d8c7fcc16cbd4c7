"""Windows of whole UTC days: ISO weeks (`2026-W48`) and "the last N days"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_WEEK = re.compile(r"^(\d{4})-?W(\d{2})$")


class BadWindow(ValueError):
    """A week or day range that cannot be read."""


@dataclass(frozen=True, slots=True)
class Window:
    """The UTC days `first` to `last`, both included."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise BadWindow(f"window ends ({self.last}) before it starts ({self.first})")

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def label(self) -> str:
        """`2026-W48` for an ISO week, else `2026-11-01..2026-11-28`."""
        if self.days == 7 and self.first.isoweekday() == 1:
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    def previous(self) -> Window:
        """The window of the same length just before this one."""
        return Window(self.first - timedelta(days=self.days), self.first - timedelta(days=1))

    def extended_back(self, days: int) -> Window:
        """This window with `days` more days before it."""
        return Window(self.first - timedelta(days=days), self.last)


def iso_week(label: str) -> Window:
    """`2026-W48` (or `2026W48`) -> Monday to Sunday of that ISO week."""
    match = _WEEK.match(label.strip())
    if not match:
        raise BadWindow(f"{label!r} is not an ISO week like 2026-W48")
    year, week = int(match[1]), int(match[2])
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError as exc:
        raise BadWindow(f"{label!r}: {year} has no week {week}") from exc
    return Window(monday, monday + timedelta(days=6))


def today_utc() -> date:
    return datetime.now(UTC).date()


def last_complete_week(today: date | None = None) -> Window:
    """The most recent ISO week that has ended before `today` (UTC)."""
    day = today or today_utc()
    this_monday = day - timedelta(days=day.isoweekday() - 1)
    return Window(this_monday - timedelta(days=7), this_monday - timedelta(days=1))


def days_ending(last: date | None = None, days: int = 28) -> Window:
    """`days` UTC days ending with `last` (default: yesterday, the last complete day)."""
    if days < 1:
        raise BadWindow(f"a window needs at least one day, not {days}")
    end = last or today_utc() - timedelta(days=1)
    return Window(end - timedelta(days=days - 1), end)
