"""project_started announces a node's new life; the start itself never depends on it."""

from __future__ import annotations

import pytest

from registration.cluster import lifecycle
from registration.cluster.lifecycle import Life
from registration.cluster.signals import project_started
from registration.models import NodeLease, RegistrationState
from tests.node_steps import node, register, state

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_receivers():
    """Disconnect every receiver of project_started for the test, then restore them."""
    saved = project_started.receivers[:]
    project_started.receivers.clear()
    project_started.sender_receivers_cache.clear()
    yield
    project_started.receivers[:] = saved
    project_started.sender_receivers_cache.clear()


def test_a_node_starts_and_a_lone_restart_expires_with_no_receiver(
    no_receivers, frozen_clock, issue
):
    first = node("node-a")
    assert lifecycle.start_node(first).life == Life.STARTED
    register(issue()[1])
    frozen_clock.advance(seconds=60)  # the lease ran out: the node was killed

    restarted = lifecycle.start_node(node("node-a"))

    assert restarted.life == Life.STARTED
    assert NodeLease.objects.filter(boot_id=restarted.node.boot_id).exists()
    assert state() == RegistrationState.EXPIRED_DUE_TO_RESTART


def test_receivers_see_the_start_already_recorded(frozen_clock, issue):
    seen = []

    def listen(sender, *, node, lease, installation, expired_registration, now, **kwargs):
        stored = NodeLease.objects.get(boot_id=node.boot_id)
        seen.append((stored.pk == lease.pk, installation.state, expired_registration))

    project_started.connect(listen, dispatch_uid="test-recorded")
    try:
        lifecycle.start_node(node("node-a"))
        register(issue()[1])
        frozen_clock.advance(seconds=60)
        lifecycle.start_node(node("node-a"))
    finally:
        project_started.disconnect(dispatch_uid="test-recorded")

    assert seen == [
        (True, RegistrationState.UNREGISTERED, False),
        (True, RegistrationState.EXPIRED_DUE_TO_RESTART, True),
    ]
