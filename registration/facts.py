"""What this installation is, as a license is checked against it: the settings' facts and
the live nodes. Also what an admin copies into a license request."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from django.conf import settings

from registration.cluster import leases
from registration.installation import get_installation
from registration.protocol.causes import LocalFacts, NodeClock
from registration.protocol.license import minor_version


def local_facts(now: datetime) -> LocalFacts:
    """Collect this installation's facts for license checks, live nodes included (this
    node among them: it serves the request that asks)."""
    return configured_facts(now, leases.live_node_count(now), leases.live_node_clocks(now))


def cluster_facts(now: datetime) -> LocalFacts:
    """Collect the facts as a process that is no node sees them (a management command):
    only the cluster's live nodes count, not the host the command runs on."""
    return configured_facts(now, len(leases.seat_holders(now)), leases.live_node_clocks(now))


def configured_facts(
    now: datetime, live_nodes: int, node_clocks: Sequence[NodeClock] = ()
) -> LocalFacts:
    """Return the facts the settings give, with the node facts supplied (no query)."""
    return LocalFacts(
        app_name=settings.APP_NAME,
        app_version=settings.APP_VERSION,
        project_content=settings.PROJECT_CONTENT,
        build_date=date.fromisoformat(settings.APP_BUILD_DATE),
        min_build_date=date.fromisoformat(settings.CONTAINER_AUTH_MIN_BUILD_DATE),
        live_nodes=live_nodes,
        now=now,
        node_clocks=tuple(node_clocks),
        max_clock_skew_seconds=settings.CLUSTER_MAX_CLOCK_SKEW_SECONDS,
        max_vendor_clock_ahead_seconds=settings.CHALLENGE_TTL_SECONDS,
    )


def version_information() -> dict[str, str]:
    """What an admin copies into a license request, and what the vendor's support staff
    find this installation by (its installation id, in the Bindings admin)."""
    return {
        "app_name": settings.APP_NAME,
        "minor_version": minor_version(settings.APP_VERSION),
        "build_version": settings.APP_VERSION,
        "build_date": settings.APP_BUILD_DATE,
        "project_content": settings.PROJECT_CONTENT,
        "installation_id": str(get_installation().installation_id),
    }
