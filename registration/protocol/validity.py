"""The one expiry rule: a license is valid through the end of its expiry day, UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta


def valid_until(expires_at: date) -> datetime:
    """Return the first instant the license is no longer valid (midnight UTC after it)."""
    if expires_at == date.max:
        # There is no day after 9999-12-31; the license never runs out.
        return datetime.max.replace(tzinfo=UTC)
    return datetime.combine(expires_at + timedelta(days=1), time.min, tzinfo=UTC)


def is_expired(expires_at: date, now: datetime) -> bool:
    """Tell whether now is past the end of the expiry day, UTC."""
    return now >= valid_until(expires_at)


def days_left(expires_at: date, now: datetime) -> int:
    """Days from today (UTC) to the last valid day: 0 on it, negative once run out."""
    return (expires_at - now.astimezone(UTC).date()).days
