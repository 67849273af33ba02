"""The registration status other code asks for, cached so pages cost no query."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime

from django.conf import settings
from django.core.cache import cache

CACHE_KEY = "registration:status:v1"


@dataclass(frozen=True)
class StatusSnapshot:
    """What the database said when the snapshot was taken; times are UTC."""

    state: str
    license_id: str | None = None
    company: str = ""
    project_name: str = ""
    expires_at: date | None = None
    max_nodes: int = 0
    locked_until: datetime | None = None

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


def snapshot() -> StatusSnapshot:
    """Read the status from the database."""
    from registration.models import Installation

    installation = Installation.objects.select_related("license").first()
    if installation is None:
        return StatusSnapshot(state="unregistered")
    lic = installation.license
    return StatusSnapshot(
        state=installation.state,
        license_id=str(lic.license_id) if lic else None,
        company=lic.company if lic else "",
        project_name=lic.project_name if lic else "",
        expires_at=lic.expires_at if lic else None,
        max_nodes=lic.max_nodes if lic else 0,
        locked_until=installation.locked_until,
    )


def cached_snapshot() -> StatusSnapshot:
    """Return the status with at most one cache lookup (and a query on a miss)."""
    value = cache.get(CACHE_KEY)
    if isinstance(value, dict):
        return StatusSnapshot(**value)
    fresh = snapshot()
    cache.set(CACHE_KEY, asdict(fresh), settings.STATUS_CACHE_SECONDS)
    return fresh


def invalidate() -> None:
    """Forget the cached status; called after every committed change of registration."""
    cache.delete(CACHE_KEY)


def wall_clock() -> datetime:
    """Time for display-only decisions on hot paths, where a database query is too dear."""
    return datetime.now(UTC)
