"""The registration status other code asks for, cached so pages cost no query."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache

from licserver.cache import CacheUnavailable, signed_get_decoded, signed_set
from registration import clock
from registration.cluster import leases
from registration.models import Installation
from registration.seal import effective_state

log = logging.getLogger(__name__)

# Bump the version when StatusSnapshot's fields or the signed form (licserver.cache)
# change, so nodes running the old code and the new one never read each other's values.
CACHE_KEY = "registration:status:v4"
# The key nodes of the release before read: deleted too on every change, so that during a
# rolling upgrade the older nodes also see a change at once. Drop it a release later.
PREVIOUS_CACHE_KEY = "registration:status:v3"


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
    # The database's clock when the snapshot was taken: the gate decides expiry and
    # locks with it, never with a node's own wall clock.
    taken_at: datetime | None = None
    # Installation.version when taken: a node never goes back to an older one.
    version: int = 0

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def to_json(self) -> dict[str, object]:
        values = asdict(self)
        for name in ("expires_at", "locked_until", "taken_at"):
            if values[name] is not None:
                values[name] = values[name].isoformat()
        return values

    @classmethod
    def from_json(cls, values: object) -> StatusSnapshot | None:
        """Rebuild a snapshot from to_json's output; None if it is not one."""
        if not isinstance(values, dict) or values.keys() != _FIELDS:
            return None
        try:
            return cls(
                **{
                    **values,
                    "expires_at": _parse(date.fromisoformat, values["expires_at"]),
                    "locked_until": _parse(datetime.fromisoformat, values["locked_until"]),
                    "taken_at": _parse(datetime.fromisoformat, values["taken_at"]),
                }
            )
        except (TypeError, ValueError):
            return None

    def is_fresh(self, wall_now: datetime) -> bool:
        """Tell whether this node may still use the snapshot: at most STATUS_CACHE_SECONDS
        old by this node's clock, give or take the cluster's allowed clock skew."""
        if self.taken_at is None:
            return False
        skew = timedelta(seconds=settings.CLUSTER_MAX_CLOCK_SKEW_SECONDS)
        age = wall_now - self.taken_at
        return -skew <= age <= timedelta(seconds=settings.STATUS_CACHE_SECONDS) + skew


def _parse(parse, value: object):
    return None if value is None else parse(value)


_FIELDS = frozenset(field.name for field in fields(StatusSnapshot))


class _Seen:
    """The newest installation version this process has read (a replayed older snapshot,
    even a genuinely signed one, is never used after a newer one)."""

    version = 0


def snapshot(*, as_server: bool = True) -> StatusSnapshot:
    """Read the status from the database.

    as_server counts this process's node as live even before its lease is written; a
    command run beside the servers (as_server=False) counts the leases only.
    """
    installation = Installation.objects.select_related("license").first()
    now = clock.now()
    nodes_used = leases.live_node_count(now) if as_server else len(leases.seat_holders(now))
    if installation is None:
        return StatusSnapshot(state="unregistered", nodes_used=nodes_used, taken_at=now)
    lic = installation.license
    return StatusSnapshot(
        state=effective_state(installation),
        license_id=str(lic.license_id) if lic else None,
        company=lic.company if lic else "",
        project_name=lic.project_name if lic else "",
        expires_at=lic.expires_at if lic else None,
        max_nodes=lic.max_nodes if lic else 0,
        locked_until=installation.locked_until,
        nodes_used=nodes_used,
        taken_at=now,
        version=installation.version,
    )


def cached_snapshot(store: BaseCache | None = None) -> StatusSnapshot:
    """Return the status with at most one cache lookup (and a query on a miss).

    Only a snapshot this product signed (licserver.cache), fresh, and not older than one
    this process has seen is used; anything else is read again from the database.
    store is the cache to use (the default cache unless given; a test passes a second
    client of the same Redis to play another node).
    """
    try:
        cached = signed_get_decoded(CACHE_KEY, StatusSnapshot.from_json, store)
    except CacheUnavailable as exc:
        # The cache is down: the database is the truth, so read it (no 500).
        log.warning("Status cache unavailable, reading the database: %s", exc)
        return _read_database()
    if cached is not None and cached.version >= _Seen.version and cached.is_fresh(wall_clock()):
        _Seen.version = cached.version
        return cached
    fresh = _read_database()
    signed_set(CACHE_KEY, fresh.to_json(), settings.STATUS_CACHE_SECONDS, store)
    return fresh


def _read_database() -> StatusSnapshot:
    fresh = snapshot()
    # The database is the truth, even when its version is lower (a restored backup).
    _Seen.version = fresh.version
    return fresh


def invalidate(store: BaseCache | None = None) -> None:
    """Forget the cached status; called after every committed change of registration."""
    (cache if store is None else store).delete_many([CACHE_KEY, PREVIOUS_CACHE_KEY])


def wall_clock() -> datetime:
    """Time for display-only decisions on hot paths, where a database query is too dear."""
    return clock.wall_now()
