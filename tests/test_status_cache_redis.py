"""With Redis as the shared cache, a change on one node is seen at once on every other."""

from __future__ import annotations

import pytest
from django.core.cache import caches

from registration import status
from registration.gate import GateState, current_registration
from tests.conftest import needs_redis
from tests.gate_steps import register, restart

pytestmark = [needs_redis, pytest.mark.redis, pytest.mark.django_db]


@pytest.fixture
def other_node(settings):
    """A second, separate client of the same Redis: what another node's process holds."""
    # Long enough that only invalidation, never expiry, can explain a fresh value.
    settings.STATUS_CACHE_SECONDS = 3600
    other = caches.create_connection("default")
    yield other
    other.close()


def test_a_change_through_the_flows_reaches_the_other_node(
    other_node, frozen_clock, issue, django_capture_on_commit_callbacks, django_assert_num_queries
):
    assert status.cached_snapshot(other_node).state == "unregistered"
    # The shared entry the other node wrote serves this node without a query.
    with django_assert_num_queries(0):
        assert status.cached_snapshot().state == "unregistered"

    register(django_capture_on_commit_callbacks, issue)

    assert other_node.get(status.CACHE_KEY) is None
    assert status.cached_snapshot(other_node).state == "registered"
    assert current_registration().state == GateState.REGISTERED


def test_a_restart_reaches_the_other_node(
    other_node, frozen_clock, issue, django_capture_on_commit_callbacks
):
    register(django_capture_on_commit_callbacks, issue)
    assert status.cached_snapshot(other_node).state == "registered"
    assert current_registration().state == GateState.REGISTERED

    restart(django_capture_on_commit_callbacks)

    assert status.cached_snapshot(other_node).state == "expired_due_to_restart"
    assert current_registration().state == GateState.EXPIRED_DUE_TO_RESTART


def test_the_other_client_is_really_separate(other_node):
    # Not the same object as this process's default cache: it has its own connection.
    assert other_node is not caches["default"]
    other_node.set("registration:test:probe", 1)
    assert caches["default"].get("registration:test:probe") == 1
