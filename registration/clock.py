"""The one clock registration rules read: the database's, so every node agrees.

Code asks ``clock.now()``. Tests swap in a FrozenClock with ``clock.use(...)``; nothing
sleeps to wait for time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol

from django.db import connection


class Clock(Protocol):
    def now(self) -> datetime: ...


class DatabaseClock:
    """Read the current time from the database server (one tiny query)."""

    def now(self) -> datetime:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT clock_timestamp()")
                return cursor.fetchone()[0].astimezone(UTC)
            cursor.execute("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")
            return datetime.fromisoformat(cursor.fetchone()[0]).replace(tzinfo=UTC)


class FrozenClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current

    def set(self, moment: datetime) -> None:
        self.current = moment


_clock: Clock = DatabaseClock()


def now() -> datetime:
    """Return the current time by the clock in use (the database's unless a test swapped it)."""
    return _clock.now()


def wall_now() -> datetime:
    """Return the time without asking the database: this machine's clock, or the clock a
    test swapped in. For hot paths where a database round trip costs more than the rule
    it serves is worth; every rule that must agree across nodes uses now()."""
    if isinstance(_clock, DatabaseClock):
        return datetime.now(UTC)
    # A test clock may keep this machine's clock apart from the database's (wall_now).
    wall = getattr(_clock, "wall_now", None)
    return wall() if wall is not None else _clock.now()


@contextmanager
def use(replacement: Clock) -> Iterator[Clock]:
    """Use replacement as the clock inside the with block."""
    global _clock
    previous, _clock = _clock, replacement
    try:
        yield replacement
    finally:
        _clock = previous
