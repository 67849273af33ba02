"""Nodes: which server instances are alive, by lease, measured by the database's clock.

A node is one running server instance: NODE_NAME plus a boot id that is new each time the
node starts and is shared by all of its worker processes (see docs/cluster.md for how the
boot id is made and passed on). Each life of a node has one NodeLease row; the processes
in lifecycle.py create, renew and release it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.urls import Resolver404, resolve
from django.utils import translation
from django.utils.translation import gettext as _

from registration.causes import NodeClock
from registration.models import NodeLease

BOOT_ID_ENV = "LICSERVER_BOOT_ID"
# Namespace text for the next life's boot id (see successor()).
_NEXT_LIFE = "licserver-next-life"


@dataclass(frozen=True)
class NodeIdentity:
    name: str
    boot_id: uuid.UUID

    def __str__(self) -> str:
        return f"{self.name} (boot {self.boot_id})"


def this_node() -> NodeIdentity:
    """Return this node's name and boot id (the boot id is shared by all its workers)."""
    boot_id = os.environ.get(BOOT_ID_ENV)
    if not boot_id:
        boot_id = str(uuid.uuid4())
        os.environ[BOOT_ID_ENV] = boot_id
    return NodeIdentity(settings.NODE_NAME, uuid.UUID(boot_id))


def successor(node: NodeIdentity) -> NodeIdentity:
    """Return the identity of the node's next life after its lease died.

    Derived, not random: every worker of the node that finds the lease dead computes the
    same next boot id, so they all join one new lease instead of starting one each.
    """
    return NodeIdentity(node.name, uuid.uuid5(node.boot_id, _NEXT_LIFE))


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
    if local_admission.admitted:
        names.add(settings.NODE_NAME)
    return len(names)


@dataclass
class LocalAdmission:
    """This process's view of its node's seat: set when the node starts or loses its lease.

    Kept in memory so every request can ask without a query.
    """

    admitted: bool = True
    seat_holders: tuple[str, ...] = ()


local_admission = LocalAdmission()


def this_node_admitted() -> bool:
    """Return whether this node holds a seat (False: License Exhausted on this node)."""
    return local_admission.admitted


# Health checks and monitoring answer on every node, admitted or not: the state is the
# answer, and a load balancer must be able to tell a refused node from a dead one.
ADMISSION_EXEMPT_URL_NAMES = frozenset({"healthz", "api-registration", "metrics"})


def _is_exempt(request: HttpRequest) -> bool:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    return match.view_name in ADMISSION_EXEMPT_URL_NAMES


class AdmissionMiddleware:
    """On a node that was not admitted, answer every request with License Exhausted.

    The admitted nodes of the cluster keep working; this one says which nodes hold the
    seats. Costs nothing on an admitted node: the flag is in memory.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if local_admission.admitted or _is_exempt(request):
            return self.get_response(request)
        holders = ", ".join(local_admission.seat_holders) or "-"
        # This runs before LocaleMiddleware: speak the browser's language all the same.
        with translation.override(translation.get_language_from_request(request)):
            message = _(
                "This node (%(node)s) is not admitted: the license's nodes are all in use. "
                "Nodes holding the seats: %(holders)s."
            ) % {"node": settings.NODE_NAME, "holders": holders}
            body = loader.get_template("error.html").render(
                {"title": _("License Exhausted"), "message": message}, request
            )
        return HttpResponse(body, status=503)
