"""Leases: alive by the database's clock, renewed by heartbeats, released, never revived."""

from __future__ import annotations

import pytest

from registration.cluster import admission, identity, leases, lifecycle
from registration.cluster.lifecycle import Life
from registration.models import NodeLease
from tests.node_steps import lease, node

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _lease_times(settings):
    settings.NODE_LEASE_SECONDS = 30
    settings.NODE_HEARTBEAT_SECONDS = 10


def live_names(frozen_clock) -> set[str]:
    return set(leases.live_leases(frozen_clock.now()).values_list("node_name", flat=True))


def test_lease_is_alive_until_lease_seconds_by_the_database_clock(frozen_clock):
    lifecycle.start_node(node("node-a"))
    frozen_clock.advance(seconds=29.9)
    assert live_names(frozen_clock) == {"node-a"}
    frozen_clock.advance(seconds=0.1)
    assert live_names(frozen_clock) == set()


def test_heartbeat_renews_the_lease_and_records_the_clock_offset(frozen_clock):
    a = node("node-a")
    lifecycle.start_node(a, offset_seconds=1.5)
    assert lease(a).offset_seconds == 1.5
    frozen_clock.advance(seconds=29.9)
    assert lifecycle.heartbeat(a, offset_seconds=-2.25).life == Life.RENEWED
    beat_at = frozen_clock.now()
    frozen_clock.advance(seconds=29.9)
    assert live_names(frozen_clock) == {"node-a"}
    renewed = lease(a)
    assert (renewed.last_seen, renewed.offset_seconds) == (beat_at, -2.25)
    frozen_clock.advance(seconds=0.1)
    assert live_names(frozen_clock) == set()


def test_clean_stop_releases_the_lease_at_once(frozen_clock):
    a = node("node-a")
    lifecycle.start_node(a)
    assert lifecycle.stop_node(a) == 1
    assert live_names(frozen_clock) == set()
    assert lease(a).released_at == frozen_clock.now()


def test_late_heartbeat_after_expiry_starts_a_new_life_instead_of_reviving(frozen_clock):
    a = node("node-a")
    lifecycle.start_node(a)
    started = frozen_clock.now()
    frozen_clock.advance(seconds=30)
    state = lifecycle.heartbeat(a)
    assert state.life == Life.STARTED
    assert state.node == identity.successor(a)
    old = lease(a)
    assert old.last_seen == started  # not renewed
    assert old.released_at == frozen_clock.now()  # closed as the node's previous life
    assert lease(state.node).started_at == frozen_clock.now()
    assert live_names(frozen_clock) == {"node-a"}


def test_heartbeat_after_release_does_not_revive(frozen_clock):
    a = node("node-a")
    lifecycle.start_node(a)
    frozen_clock.advance(seconds=1)
    lifecycle.stop_node(a)
    frozen_clock.advance(seconds=1)
    assert lifecycle.heartbeat(a).life == Life.STALE
    assert live_names(frozen_clock) == set()
    assert NodeLease.objects.count() == 1


def test_workers_of_one_node_share_one_lease_and_follow_its_next_life_together(frozen_clock):
    a = node("node-a")
    assert lifecycle.start_node(a).life == Life.STARTED
    assert lifecycle.start_node(a).life == Life.ATTACHED  # the node's second worker
    frozen_clock.advance(seconds=31)
    first = lifecycle.heartbeat(a)
    second = lifecycle.heartbeat(a)
    assert (first.life, second.life) == (Life.STARTED, Life.ATTACHED)
    assert first.node == second.node == identity.successor(a)
    # A worker forked later still carries the first boot id: it finds the current life.
    assert lifecycle.start_node(a).node == identity.successor(a)
    assert NodeLease.objects.count() == 2


def test_stop_releases_the_current_life_of_the_node(frozen_clock):
    a = node("node-a")
    lifecycle.start_node(a)
    frozen_clock.advance(seconds=31)
    lifecycle.heartbeat(a)
    assert live_names(frozen_clock) == {"node-a"}
    lifecycle.stop_node(a)
    assert live_names(frozen_clock) == set()


def test_a_newer_life_under_the_same_name_closes_the_older_one(frozen_clock):
    old, new = node("node-a"), node("node-a")
    lifecycle.start_node(old)
    frozen_clock.advance(seconds=5)
    lifecycle.start_node(new)
    assert lease(old).released_at == frozen_clock.now()
    # The older life's late heartbeat never takes the name back.
    assert lifecycle.heartbeat(old).life == Life.STALE
    assert list(leases.live_leases(frozen_clock.now())) == [lease(new)]


def test_processes_sharing_a_node_name_do_not_share_its_seat(frozen_clock):
    # Two servers started with one NODE_NAME: the newer one takes the name; the older one
    # holds no seat any more, so a 1-node license cannot run two servers that way.
    old, new = node("node-a"), node("node-a")
    lifecycle.start_node(old)
    lifecycle.start_node(new)

    state = lifecycle.heartbeat(old)

    assert state.life == Life.STALE
    assert state.admitted is False
    assert state.seat_holders == ("node-a",)


def test_live_nodes_are_counted_by_name_and_only_when_admitted(frozen_clock, settings):
    settings.NODE_NAME = "node-a"
    lifecycle.start_node(node("node-a"))
    lifecycle.start_node(node("node-b"), offset_seconds=0.5)
    lifecycle.start_node(node("node-c"), offset_seconds=9.0)
    NodeLease.objects.filter(node_name="node-c").update(admitted=False)
    now = frozen_clock.now()
    assert leases.live_node_count(now) == 2
    assert [(c.name, c.offset_seconds) for c in leases.live_node_clocks(now)] == [
        ("node-a", 0.0),
        ("node-b", 0.5),
    ]


def test_a_node_that_is_not_admitted_does_not_count_itself(frozen_clock, settings):
    settings.NODE_NAME = "node-c"
    lifecycle.start_node(node("node-a"))
    assert leases.live_node_count(frozen_clock.now()) == 2
    admission.local.admitted = False
    try:
        assert leases.live_node_count(frozen_clock.now()) == 1
    finally:
        admission.local.admitted = True


def test_successor_is_the_same_for_every_worker_and_new_each_life():
    a = node("node-a")
    assert identity.successor(a) == identity.successor(a)
    assert identity.successor(a).name == "node-a"
    assert (
        len(
            {
                a.boot_id,
                identity.successor(a).boot_id,
                identity.successor(identity.successor(a)).boot_id,
            }
        )
        == 3
    )
