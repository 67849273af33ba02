"""Which nodes are live: one NodeLease row per life of a node, renewed by its heartbeat and
measured by the database's clock (lifecycle.py creates, renews and releases them)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet

from registration.cluster import admission
from registration.models import NodeLease
from registration.protocol.causes import NodeClock


def lease_horizon(now: datetime) -> datetime:
    """Return the moment a lease must have been renewed after to be alive at now."""
    return now - timedelta(seconds=settings.NODE_LEASE_SECONDS)


def is_alive(lease: NodeLease, now: datetime) -> bool:
    """A lease is alive while unreleased and younger than NODE_LEASE_SECONDS."""
    return lease.released_at is None and lease.last_seen > lease_horizon(now)


def live_leases(now: datetime) -> QuerySet[NodeLease]:
    """Leases renewed within NODE_LEASE_SECONDS and not released."""
    return NodeLease.objects.filter(released_at__isnull=True, last_seen__gt=lease_horizon(now))


def seat_holders(now: datetime, *, besides: str = "") -> list[str]:
    """Return the names of live admitted nodes, sorted, leaving out the name besides."""
    names = live_leases(now).filter(admitted=True).exclude(node_name=besides)
    return sorted(set(names.values_list("node_name", flat=True)))


def live_node_clocks(now: datetime) -> list[NodeClock]:
    """One entry per live admitted node name: the newest lease's clock offset."""
    newest: dict[str, NodeLease] = {}
    for lease in live_leases(now).filter(admitted=True).order_by("started_at"):
        newest[lease.node_name] = lease
    return [NodeClock(name, lease.offset_seconds) for name, lease in sorted(newest.items())]


def live_node_count(now: datetime) -> int:
    """Count live admitted nodes by distinct name.

    This node counts even before its lease is written, unless it was refused a seat: a
    node that is not admitted holds no seat and serves nothing.
    """
    names = set(seat_holders(now))
    if admission.local.admitted:
        names.add(settings.NODE_NAME)
    return len(names)
