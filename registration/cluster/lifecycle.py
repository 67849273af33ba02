"""A node's life, as its server processes live it: start (or attach), heartbeat, stop.

Each of start_node(), heartbeat() and stop_node() is one transaction under the
installation's row lock, like every other registration process, so the starts of all
nodes are serialized: admission is atomic and "is any other node alive?" has one answer
at a time. Leases are measured by the database's clock.

Restart rules, in plain words (begin_life() applies them):
- an older unreleased lease under the same node name is that node's previous life: it is
  closed, never counted as a peer;
- a node that starts while the installation is registered and the other live admitted
  nodes already hold all of the license's seats is not admitted;
- when no other node is alive, the registration does not survive the restart: a
  registered installation becomes expired due to restart. The license stays stored, so
  re-registration needs a new scan, never a new upload.

Process hooks: start_process() is called once by every server process (idempotent); it
starts or attaches to the node's lease and runs a heartbeat thread. stop_process() stops
the thread; release_node() is called by the boot's master (the process that made the
boot id: the gunicorn master, the development server's outer process) when it exits
cleanly.

Joining a boot: each lease records its boot's master (pid, start time, host boot id). A
process joins an existing lease only when that master is its live parent or itself
(identity.inherited_boot() checks the process, _start() the lease); any other process
that found the boot id in its environment starts a new boot instead, as on a restart.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from django.conf import settings
from django.db import close_old_connections, connection, transaction

from registration import clock
from registration.cluster import admission, identity, leases
from registration.cluster.identity import (
    BOOT_ID_ENV,
    BOOT_MASTER_ENV,
    Master,
    NodeIdentity,
    successor,
    this_node,
)
from registration.cluster.signals import project_started
from registration.installation import installation_for_update, save_installation
from registration.models import (
    AuditAction,
    AuditEvent,
    Installation,
    NodeLease,
    RegistrationState,
)
from registration.seal import effective_state

log = logging.getLogger(__name__)


class Life(StrEnum):
    STARTED = "started"  # this call began a new life of the node (project_started sent)
    ATTACHED = "attached"  # the node's life was already running; this process joined it
    RENEWED = "renewed"  # a heartbeat renewed the lease
    STALE = "stale"  # the lease was closed by a newer life under the same node name


@dataclass(frozen=True)
class NodeState:
    """Which life of the node a process belongs to after a start or a heartbeat."""

    node: NodeIdentity
    life: Life
    admitted: bool = True
    seat_holders: tuple[str, ...] = ()
    # The boot's master when the caller named one (server processes always do).
    master: Master | None = None


def measure_offset() -> float:
    """Return this machine's clock minus the database's clock, in seconds."""
    before = time.time()
    database = clock.now()
    after = time.time()
    return (before + after) / 2 - database.timestamp()


def _lease(node: NodeIdentity) -> NodeLease | None:
    return NodeLease.objects.filter(boot_id=node.boot_id).first()


def lease_master(lease: NodeLease) -> Master | None:
    """Return the master recorded in lease (None for a lease recorded without one)."""
    if lease.master_pid is None:
        return None
    return Master(
        lease.master_pid, lease.master_started, lease.host_boot_id, lease.boot_secret_hash
    )


def begin_life(
    row: Installation,
    node: NodeIdentity,
    now: datetime,
    offset_seconds: float,
    pid: int | None,
    master: Master | None = None,
) -> NodeLease:
    """Record a new life of the node: close its earlier lives, decide its admission, and
    expire a registration nobody kept alive. Call with the installation's row lock held."""
    NodeLease.objects.filter(node_name=node.name, released_at__isnull=True).exclude(
        boot_id=node.boot_id
    ).update(released_at=now)
    peers = leases.seat_holders(now, besides=node.name)
    lic = row.license
    registered = effective_state(row) == RegistrationState.REGISTERED
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
        master_pid=master.pid if master else None,
        master_started=master.started if master else None,
        host_boot_id=master.host_boot_id if master else "",
        boot_secret_hash=master.secret_hash if master else "",
    )
    license_id = lic.license_id if lic is not None else None
    expired = registered and not full and not peers
    if full:
        AuditEvent.record(
            AuditAction.NODE_REFUSED,
            at=now,
            installation_id=row.installation_id,
            license_id=license_id,
            node_name=node.name,
            seat_holders=peers,
        )
    elif expired:
        # Nobody kept the registration alive: every node of the cluster restarted.
        save_installation(row, state=RegistrationState.EXPIRED_DUE_TO_RESTART)
        AuditEvent.record(
            AuditAction.EXPIRED_DUE_TO_RESTART,
            at=now,
            installation_id=row.installation_id,
            license_id=license_id,
            node_name=node.name,
            boot_id=str(node.boot_id),
        )
    project_started.send(
        sender=NodeLease,
        node=node,
        lease=lease,
        installation=row,
        expired_registration=expired,
        now=now,
    )
    return lease


def _start(
    row: Installation,
    node: NodeIdentity,
    offset_seconds: float,
    pid: int | None,
    master: Master | None = None,
) -> NodeState:
    """Join the node's current life, or begin a new one. Call with the row lock held.

    With a master, join only a lease of that master's boot; a lease of another master
    means the boot id was inherited across a restart, and this process begins a new boot
    that it masters itself.
    """
    now = clock.now()
    lease = _lease(node)
    # Follow the node's lives: a sibling worker may have begun the next one already.
    while lease is not None and not leases.is_alive(lease, now):
        following = successor(node)
        following_lease = _lease(following)
        if following_lease is None:
            break
        node, lease = following, following_lease
    if master is not None and lease is not None and lease_master(lease) != master:
        log.warning("Node %s: its lease names another master; starting a new boot", node)
        node, master, lease = identity.own_boot(node.name), identity.this_process(), None
    if lease is not None and lease.released_at is not None:
        # Released with no next life: stopped, or replaced by another start under the same
        # name. Never fight a newer life for the name, and hold no seat either: otherwise
        # any number of processes sharing one NODE_NAME would count as one node.
        holders = tuple(leases.seat_holders(now))
        return NodeState(node, Life.STALE, admitted=False, seat_holders=holders, master=master)
    if lease is not None and leases.is_alive(lease, now):
        life = Life.ATTACHED
    else:
        # No lease yet, or it expired: a late heartbeat never revives it, a new life begins.
        if lease is not None:
            node = successor(node)
        lease = begin_life(row, node, now, offset_seconds, pid, master)
        life = Life.STARTED
    holders = () if lease.admitted else tuple(leases.seat_holders(now, besides=node.name))
    return NodeState(node, life, lease.admitted, holders, master)


def start_node(
    node: NodeIdentity | None = None,
    *,
    offset_seconds: float = 0.0,
    pid: int | None = None,
    master: Master | None = None,
) -> NodeState:
    """Start the node's life, or attach to it when another of its processes already did.

    master is the boot's master as this process verified it (identity.process_boot()):
    the lease records it, and only a lease that records it is joined.
    """
    node = node or this_node()
    with transaction.atomic():
        return _start(installation_for_update(), node, offset_seconds, pid, master)


def heartbeat(
    node: NodeIdentity,
    *,
    offset_seconds: float = 0.0,
    pid: int | None = None,
    master: Master | None = None,
) -> NodeState:
    """Renew the node's lease; if it was reaped or released, move on to the node's next life.

    The renewal is a conditional UPDATE: it touches only a lease that is unreleased and
    still alive by the database's clock, so a late heartbeat never revives a dead lease.
    """
    with transaction.atomic():
        row = installation_for_update()
        now = clock.now()
        renewed = NodeLease.objects.filter(
            boot_id=node.boot_id, released_at__isnull=True, last_seen__gt=leases.lease_horizon(now)
        ).update(last_seen=now, offset_seconds=offset_seconds)
        if renewed:
            return NodeState(node, Life.RENEWED, master=master)
        return _start(row, node, offset_seconds, pid, master)


def stop_node(node: NodeIdentity | None = None) -> int:
    """Release the node's lease at once (its current life and any earlier ones)."""
    node = node or this_node()
    with transaction.atomic():
        installation_for_update()
        now = clock.now()
        boot_ids = []
        while NodeLease.objects.filter(boot_id=node.boot_id).exists():
            boot_ids.append(node.boot_id)
            node = successor(node)
        return NodeLease.objects.filter(boot_id__in=boot_ids, released_at__isnull=True).update(
            released_at=now
        )


# --- Process hooks ------------------------------------------------------------------


def _adopt(state: NodeState) -> None:
    """Make this process act as the node's current life says."""
    os.environ[BOOT_ID_ENV] = str(state.node.boot_id)
    if state.master is not None:
        os.environ[BOOT_MASTER_ENV] = str(state.master)
    admission.local.admitted = state.admitted
    admission.local.seat_holders = state.seat_holders


class Heartbeat(threading.Thread):
    """Renew the node's lease every NODE_HEARTBEAT_SECONDS until stopped."""

    def __init__(self, node: NodeIdentity, master: Master | None) -> None:
        super().__init__(name="licserver-heartbeat", daemon=True)
        self.node = node
        self.master = master
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(settings.NODE_HEARTBEAT_SECONDS):
            close_old_connections()
            try:
                state = heartbeat(
                    self.node,
                    offset_seconds=measure_offset(),
                    pid=os.getpid(),
                    master=self.master,
                )
            except Exception:
                # The database may be briefly away; the lease survives NODE_LEASE_SECONDS.
                log.exception("Node heartbeat failed; trying again")
                connection.close()
                continue
            if state.life == Life.STALE:
                log.error(
                    "The lease of node %s was released by another start under the same "
                    "name; this process stops renewing it and serves License Exhausted "
                    "(is NODE_NAME unique per node?)",
                    self.node.name,
                )
                _adopt(state)
                break
            if state.life == Life.STARTED:
                log.warning(
                    "The lease of node %s had expired; the node started a new life", state.node
                )
            _adopt(state)
            self.node, self.master = state.node, state.master
        connection.close()


_process_lock = threading.Lock()
_heartbeat: Heartbeat | None = None


def start_process() -> NodeState | None:
    """Start or attach this process's node and keep its lease alive (once per process).

    Returns None when nothing was done.
    """
    global _heartbeat
    with _process_lock:
        if _heartbeat is not None and _heartbeat.is_alive():
            return None
        node, master = identity.process_boot()
        try:
            state = start_node(
                node, offset_seconds=measure_offset(), pid=os.getpid(), master=master
            )
        except Exception:
            # Serve anyway (pages answer 503 while the database is away, and a failing
            # project_started receiver must not stop a worker booting); the heartbeat's
            # first renewal finds no lease and starts the node then.
            log.exception("Could not start node %s; the heartbeat will retry", node)
            _heartbeat = Heartbeat(node, master)
            _heartbeat.start()
            return None
        _adopt(state)
        log.info("Node %s %s (admitted: %s)", state.node, state.life, state.admitted)
        if state.life == Life.STALE:
            return state
        _heartbeat = Heartbeat(state.node, state.master)
        _heartbeat.start()
        return state


def stop_process() -> None:
    """Stop this process's heartbeat thread (the lease stays until released or expired)."""
    global _heartbeat
    with _process_lock:
        if _heartbeat is not None:
            _heartbeat.stopped.set()
            _heartbeat.join(timeout=5)
            _heartbeat = None


def release_node() -> int:
    """Release this node's lease at a clean stop; never raise (the process is exiting)."""
    try:
        released = stop_node(this_node())
    except Exception:
        log.exception("Could not release the node's lease; it expires by itself")
        return 0
    log.info("Node %s released its lease", this_node())
    return released
