"""Nodes: which server instances are alive, by lease, measured by the database's clock."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet

from registration.causes import NodeClock
from registration.models import NodeLease

BOOT_ID_ENV = "LICSERVER_BOOT_ID"


@dataclass(frozen=True)
class NodeIdentity:
    name: str
    boot_id: uuid.UUID


def this_node() -> NodeIdentity:
    """Return this node's name and boot id (the boot id is shared by all its workers)."""
    boot_id = os.environ.get(BOOT_ID_ENV)
    if not boot_id:
        boot_id = str(uuid.uuid4())
        os.environ[BOOT_ID_ENV] = boot_id
    return NodeIdentity(settings.NODE_NAME, uuid.UUID(boot_id))


def live_leases(now: datetime) -> QuerySet[NodeLease]:
    """Leases renewed within NODE_LEASE_SECONDS and not released."""
    horizon = now - timedelta(seconds=settings.NODE_LEASE_SECONDS)
    return NodeLease.objects.filter(released_at__isnull=True, last_seen__gt=horizon)


def live_node_clocks(now: datetime) -> list[NodeClock]:
    """One entry per live admitted node name: the newest lease's clock offset."""
    newest: dict[str, NodeLease] = {}
    for lease in live_leases(now).filter(admitted=True).order_by("started_at"):
        newest[lease.node_name] = lease
    return [NodeClock(name, lease.offset_seconds) for name, lease in sorted(newest.items())]


def live_node_count(now: datetime) -> int:
    """Count live admitted nodes by distinct name; this node counts even before its lease."""
    names = set(live_leases(now).filter(admitted=True).values_list("node_name", flat=True))
    names.add(settings.NODE_NAME)
    return len(names)
