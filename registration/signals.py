"""The ``project_started`` signal: sent once each time a node starts a new life.

Where it is sent: ``registration.lifecycle.start_node()`` (called by every server process
as it starts: gunicorn workers via gunicorn.conf.py and licserver/wsgi.py, the development
server via the runserver command) sends it when the process finds no lease for its node's
boot id, so a node's first process sends it and the node's other processes, recycled
workers and code reloads only attach. ``lifecycle.heartbeat()`` sends it too when a node's
lease died (a late heartbeat never revives a lease: the node starts a new life instead).

It is sent inside the start's transaction, with the installation row locked
(select_for_update), so starts of all nodes are serialized. Keyword arguments:

- ``node``: the NodeIdentity (name, boot id) of the new life;
- ``installation``: the locked Installation row;
- ``now``: the database's time;
- ``offset_seconds``: the node's clock minus the database's clock;
- ``pid``: the process that saw the start.

The receiver below records the node's lease. Rules, in plain words:

- an older unreleased lease under the same node name is that node's previous life: it is
  closed, never counted as a peer;
- a node that starts while the installation is registered and the other live admitted
  nodes already hold all of the license's seats is not admitted;
- when no other node is alive, the registration does not survive the restart: a
  registered installation becomes expired due to restart. The license stays stored, so
  re-registration needs a new scan, never a new upload.
"""

from __future__ import annotations

from datetime import datetime

from django.dispatch import Signal, receiver

from registration import audit, flows, nodes
from registration.models import AuditAction, Installation, NodeLease, RegistrationState

project_started = Signal()


@receiver(project_started, dispatch_uid="registration.record_node_start")
def record_node_start(
    sender: object,
    *,
    node: nodes.NodeIdentity,
    installation: Installation,
    now: datetime,
    offset_seconds: float,
    pid: int | None,
    **kwargs: object,
) -> NodeLease:
    """Record the new life's lease, decide its admission, and expire a lone restart."""
    NodeLease.objects.filter(node_name=node.name, released_at__isnull=True).exclude(
        boot_id=node.boot_id
    ).update(released_at=now)
    peers = nodes.seat_holders(now, besides=node.name)
    lic = installation.license
    registered = installation.state == RegistrationState.REGISTERED
    # Admission: a registered cluster never runs more nodes than the license allows.
    full = registered and lic is not None and len(peers) >= lic.max_nodes
    lease = NodeLease.objects.create(
        node_name=node.name,
        boot_id=node.boot_id,
        started_at=now,
        last_seen=now,
        offset_seconds=offset_seconds,
        admitted=not full,
        pid=pid,
    )
    license_id = lic.license_id if lic is not None else None
    if full:
        audit.record(
            AuditAction.NODE_REFUSED,
            at=now,
            installation_id=installation.installation_id,
            license_id=license_id,
            node_name=node.name,
            seat_holders=peers,
        )
    elif registered and not peers:
        # Nobody kept the registration alive: every node of the cluster restarted.
        flows.save_installation(installation, state=RegistrationState.EXPIRED_RESTART)
        audit.record(
            AuditAction.EXPIRED_RESTART,
            at=now,
            installation_id=installation.installation_id,
            license_id=license_id,
            node_name=node.name,
            boot_id=str(node.boot_id),
        )
    return lease
