"""The registration status other code asks for, cached so pages cost no query."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache

from registration import clock
from registration.cluster import leases
from registration.models import Installation
from registration.net import CACHE_ERRORS

log = logging.getLogger(__name__)

# Bump the version when StatusSnapshot's fields change, so nodes running the old code
# and the new one never read each other's cached values.
CACHE_KEY = "registration:status:v2"


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
    # Live admitted nodes when the snapshot was taken (counting needs a query, so it is
    # cached here; it may lag a node joining or leaving by STATUS_CACHE_SECONDS).
    nodes_used: int = 0

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


_FIELDS = frozenset(field.name for field in fields(StatusSnapshot))


def snapshot(*, as_server: bool = True) -> StatusSnapshot:
    """Read the status from the database.

    as_server counts this process's node as live even before its lease is written; a
    command run beside the servers (as_server=False) counts the leases only.
    """
    installation = Installation.objects.select_related("license").first()
    now = clock.now()
    nodes_used = leases.live_node_count(now) if as_server else len(leases.seat_holders(now))
    if installation is None:
        return StatusSnapshot(state="unregistered", nodes_used=nodes_used)
    lic = installation.license
    return StatusSnapshot(
        state=installation.state,
        license_id=str(lic.license_id) if lic else None,
        company=lic.company if lic else "",
        project_name=lic.project_name if lic else "",
        expires_at=lic.expires_at if lic else None,
        max_nodes=lic.max_nodes if lic else 0,
        locked_until=installation.locked_until,
        nodes_used=nodes_used,
    )


def cached_snapshot(store: BaseCache | None = None) -> StatusSnapshot:
    """Return the status with at most one cache lookup (and a query on a miss).

    store is the cache to use (the default cache unless given; a test passes a second
    client of the same Redis to play another node).
    """
    store = cache if store is None else store
    try:
        value = store.get(CACHE_KEY)
    except CACHE_ERRORS as exc:
        # The cache is down: the database is the truth, so read it (no 500).
        log.warning("Status cache unavailable, reading the database: %s", exc)
        return snapshot()
    if isinstance(value, dict) and value.keys() <= _FIELDS and "state" in value:
        return StatusSnapshot(**value)
    fresh = snapshot()
    try:
        store.set(CACHE_KEY, asdict(fresh), settings.STATUS_CACHE_SECONDS)
    except CACHE_ERRORS as exc:
        log.warning("Status cache unavailable, not storing the status: %s", exc)
    return fresh


def invalidate(store: BaseCache | None = None) -> None:
    """Forget the cached status; called after every committed change of registration."""
    (cache if store is None else store).delete(CACHE_KEY)


def wall_clock() -> datetime:
    """Time for display-only decisions on hot paths, where a database query is too dear."""
    return clock.wall_now()
