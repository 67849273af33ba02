"""Restart invalidation, admission and clock skew, through the node lifecycle processes."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from registration.cluster import admission, identity, leases, lifecycle
from registration.cluster.lifecycle import Life
from registration.cluster.signals import project_started
from registration.flows.challenge import refresh_challenge
from registration.flows.upload import upload_license
from registration.models import (
    AuditAction,
    ChallengeState,
    Installation,
    NodeLease,
    QrChallenge,
    RegistrationState,
)
from registration.protocol.causes import CauseCode
from registration.protocol.challenge import Purpose
from tests.conftest import needs_postgres
from tests.node_steps import audit_count, lease, node, register, state
from tests.phone_steps import phone_code

PAGE = reverse("registration:registration")


@pytest.fixture(autouse=True)
def _lease_times(settings):
    settings.NODE_LEASE_SECONDS = 30
    settings.NODE_HEARTBEAT_SECONDS = 10


@pytest.fixture(autouse=True)
def _admitted():
    yield
    admission.local.admitted = True
    admission.local.seat_holders = ()


@pytest.fixture
def starts():
    """Every node life project_started announced, in order."""
    sent: list[identity.NodeIdentity] = []

    def listen(sender, *, node, **kwargs):
        sent.append(node)

    project_started.connect(listen, dispatch_uid="test-starts")
    yield sent
    project_started.disconnect(dispatch_uid="test-starts")


@pytest.mark.django_db
def test_single_node_restart_expires_the_registration_and_keeps_the_license(
    frozen_clock, issue, starts
):
    first = node("node-a")
    lifecycle.start_node(first)
    _lic, text = issue(max_nodes=1)
    register(text)
    license_row = Installation.objects.get().license
    frozen_clock.advance(seconds=30)  # killed: its lease ran out
    second = node("node-a")
    assert lifecycle.start_node(second).life == Life.STARTED
    assert starts == [first, second]
    installation = Installation.objects.get()
    assert installation.state == RegistrationState.EXPIRED_DUE_TO_RESTART
    assert installation.license == license_row
    assert audit_count(AuditAction.EXPIRED_DUE_TO_RESTART) == 1


@pytest.mark.django_db
def test_clean_stop_and_start_expires_the_registration(frozen_clock, issue):
    first = node("node-a")
    lifecycle.start_node(first)
    register(issue()[1])
    lifecycle.stop_node(first)
    frozen_clock.advance(seconds=1)
    lifecycle.start_node(node("node-a"))
    assert state() == RegistrationState.EXPIRED_DUE_TO_RESTART


@pytest.mark.django_db
def test_worker_recycle_or_code_reload_is_not_a_restart(frozen_clock, issue, starts):
    a = node("node-a")
    lifecycle.start_node(a)
    register(issue()[1])
    frozen_clock.advance(seconds=20)
    assert lifecycle.start_node(a).life == Life.ATTACHED  # same boot id: same life
    assert starts == [a]
    assert state() == RegistrationState.REGISTERED
    assert audit_count(AuditAction.EXPIRED_DUE_TO_RESTART) == 0


@pytest.mark.django_db
def test_one_node_restarted_while_another_kept_serving_stays_registered(frozen_clock, issue):
    a, b = node("node-a"), node("node-b")
    lifecycle.start_node(a)
    lifecycle.start_node(b)
    register(issue(max_nodes=2)[1])
    lifecycle.stop_node(a)
    frozen_clock.advance(seconds=29.9)
    lifecycle.start_node(node("node-a"))  # node-b's lease is still alive
    assert state() == RegistrationState.REGISTERED


@pytest.mark.django_db
def test_all_nodes_restarted_expires_the_registration(frozen_clock, issue):
    a, b = node("node-a"), node("node-b")
    lifecycle.start_node(a)
    lifecycle.start_node(b)
    register(issue(max_nodes=2)[1])
    frozen_clock.advance(seconds=30)  # both killed; both leases ran out
    lifecycle.start_node(node("node-a"))
    assert state() == RegistrationState.EXPIRED_DUE_TO_RESTART
    lifecycle.start_node(node("node-b"))
    assert state() == RegistrationState.EXPIRED_DUE_TO_RESTART
    assert audit_count(AuditAction.EXPIRED_DUE_TO_RESTART) == 1


@pytest.mark.django_db
def test_the_previous_life_of_the_restarting_node_is_not_a_live_peer(frozen_clock, issue):
    crashed = node("node-a")
    lifecycle.start_node(crashed)
    register(issue()[1])
    frozen_clock.advance(seconds=5)  # its lease is still young, but it is the same node
    lifecycle.start_node(node("node-a"))
    assert state() == RegistrationState.EXPIRED_DUE_TO_RESTART
    assert lease(crashed).released_at == frozen_clock.now()


@pytest.mark.django_db
def test_a_node_starting_into_a_full_registered_cluster_is_not_admitted(frozen_clock, issue):
    lifecycle.start_node(node("node-a"))
    lifecycle.start_node(node("node-b"))
    register(issue(max_nodes=2)[1])
    c = node("node-c")
    started = lifecycle.start_node(c)
    assert (started.admitted, started.seat_holders) == (False, ("node-a", "node-b"))
    assert lease(c).admitted is False
    assert state() == RegistrationState.REGISTERED
    assert audit_count(AuditAction.NODE_REFUSED) == 1
    assert leases.live_node_count(frozen_clock.now()) == 2
    # A seat frees when a node stops: the next node to start takes it.
    lifecycle.stop_node(_identity("node-b"))
    assert lifecycle.start_node(node("node-d")).admitted is True


def _identity(name: str) -> identity.NodeIdentity:
    row = NodeLease.objects.get(node_name=name, released_at__isnull=True)
    return identity.NodeIdentity(row.node_name, row.boot_id)


@pytest.mark.django_db
def test_unregistered_or_expired_clusters_admit_every_node(frozen_clock, issue):
    lifecycle.start_node(node("node-a"))
    lifecycle.start_node(node("node-b"))
    assert lifecycle.start_node(node("node-c")).admitted is True


@pytest.mark.django_db
def test_a_node_not_admitted_answers_license_exhausted_and_names_the_seat_holders(
    frozen_clock, issue, manager_client
):
    admission.local.admitted = False
    admission.local.seat_holders = ("node-a", "node-b")
    for path in (PAGE, "/admin/", "/accounts/login/"):
        response = manager_client.get(path)
        assert response.status_code == 503
        body = response.content.decode()
        assert "License Exhausted" in body
        assert "node-a, node-b" in body
    admission.local.admitted = True
    assert manager_client.get(PAGE).status_code == 200


@pytest.mark.django_db
def test_a_node_not_admitted_still_answers_health_api_and_metrics(frozen_clock, settings):
    settings.REGISTRATION_API_TOKEN = "api-token-0123456789"
    settings.METRICS_TOKEN = "metrics-token-0123456789"
    admission.local.admitted = False
    admission.local.seat_holders = ("node-a",)
    try:
        client = Client()
        assert client.get("/healthz").status_code == 200
        api = client.get("/api/registration", HTTP_AUTHORIZATION="Bearer api-token-0123456789")
        assert api.status_code == 200
        assert api.json()["state"] == "not_admitted"
        metrics = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789")
        assert metrics.status_code == 200
        assert client.get(PAGE).status_code == 503
    finally:
        admission.local.admitted = True


@pytest.mark.django_db
def test_re_register_after_restart_issues_a_re_register_challenge(
    frozen_clock, issue, manager_client
):
    lifecycle.start_node(node("node-a"))
    register(issue()[1])
    frozen_clock.advance(seconds=30)
    lifecycle.start_node(node("node-a"))
    page = manager_client.get(PAGE).content.decode()
    assert 'id="re-register"' in page
    response = manager_client.post(reverse("registration:challenge"))
    assert response.status_code == 302
    challenge = QrChallenge.objects.get(state=ChallengeState.OPEN)
    assert challenge.purpose == Purpose.RE_REGISTER
    manager_client.post(reverse("registration:code"), {"code": phone_code(challenge)})
    assert state() == RegistrationState.REGISTERED


@pytest.mark.django_db
def test_re_registering_with_more_live_nodes_than_the_license_is_license_exhausted(
    frozen_clock, issue, settings
):
    settings.NODE_NAME = "node-a"
    lifecycle.start_node(node("node-a"))
    register(issue(max_nodes=1)[1])
    frozen_clock.advance(seconds=30)
    lifecycle.start_node(node("node-a"))
    lifecycle.start_node(node("node-b"))
    result = refresh_challenge()
    assert [cause.code for cause in result.causes] == [CauseCode.LICENSE_EXHAUSTED]


@pytest.mark.django_db
def test_registration_is_refused_while_a_live_node_clock_is_off_by_more_than_allowed(
    frozen_clock, issue, settings
):
    settings.CLUSTER_MAX_CLOCK_SKEW_SECONDS = 5
    lifecycle.start_node(node("node-a"))
    lifecycle.start_node(node("node-b"), offset_seconds=5.0)
    _lic, text = issue(max_nodes=2)
    register(text)  # exactly the limit is allowed
    b = _identity("node-b")
    lifecycle.heartbeat(b, offset_seconds=-5.1)
    result = refresh_challenge()
    assert [cause.code for cause in result.causes] == [CauseCode.CLOCK_SKEW]
    assert result.causes[0].details == ("Node node-b: clock offset -5.1 s (at most 5 s allowed).",)
    upload = upload_license(text.encode(), "container")
    assert upload.validation.codes == ["clock_skew"]
    frozen_clock.advance(seconds=20)
    lifecycle.heartbeat(_identity("node-a"))
    frozen_clock.advance(seconds=10)  # node-b stopped renewing: its clock no longer counts
    assert refresh_challenge().causes == ()


@needs_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_n_plus_5_nodes_starting_at_once_admit_exactly_n(frozen_clock, issue):
    seats = 3
    lifecycle.start_node(node("keeper"))
    register(issue(max_nodes=seats)[1])
    names = [f"node-{i}" for i in range(seats + 5)]
    barrier = threading.Barrier(len(names))
    results: dict[str, bool] = {}
    errors: list[BaseException] = []

    def start(name: str) -> None:
        try:
            barrier.wait(timeout=10)
            results[name] = lifecycle.start_node(node(name)).admitted
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=start, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert sum(results.values()) == seats - 1  # the keeper holds the first seat
    assert len(leases.seat_holders(frozen_clock.now())) == seats
    assert state() == RegistrationState.REGISTERED
