"""Moving servers: one license, one installation, until support staff unbind it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from registration import clock
from registration.authority.models import AuditAction, AuditEvent, Binding, BindingState
from registration.authority.support import unbind
from registration.flows.challenge import refresh_challenge
from registration.flows.code import Outcome, submit_code
from registration.flows.upload import upload_license
from registration.installation import get_installation
from registration.models import Installation, QrChallenge
from tests.conftest import START
from tests.phone_steps import crafted_token, phone_code, shown_code

pytestmark = pytest.mark.django_db

FULL = "The maximum license number has been reached."


def register_here() -> QrChallenge:
    """Scan the open QR code with the phone and submit its code on the console."""
    challenge = QrChallenge.objects.get(state="open")
    assert submit_code(phone_code(challenge)).outcome == Outcome.ACCEPTED
    return challenge


def new_server() -> None:
    """A new server with a new database: this installation's rows are gone."""
    QrChallenge.objects.all().delete()
    Installation.objects.all().delete()


def test_second_installation_is_refused_until_unbound(client: Client, frozen_clock, issue, staff):
    lic, text = issue()
    assert upload_license(text.encode(), "container").accepted
    register_here()
    old_installation = get_installation().installation_id

    frozen_clock.advance(days=3, hours=2)
    new_server()
    assert upload_license(text.encode(), "container").accepted
    new_installation = get_installation().installation_id
    assert new_installation != old_installation
    token = QrChallenge.objects.get(state="open").token

    refused = client.get(reverse("phone:verify", kwargs={"token": token}))

    assert refused.status_code == 409
    body = refused.content.decode()
    assert FULL in body
    assert "This license is registered to another server since 2026/06/01 12:00 UTC." in body
    assert "Ask the vendor&#x27;s support staff to unbind it before moving servers." in body
    assert shown_code(body) is None
    binding = Binding.objects.get()
    assert binding.installation_id == old_installation
    assert binding.last_verified == START  # the refusal did not touch the holder's binding
    event = AuditEvent.objects.get(action=AuditAction.BINDING_REFUSED)
    assert event.installation_id == new_installation
    assert event.detail["problems"] == ["bound_elsewhere"]

    unbind(binding.pk, actor=staff, reason="Customer moved servers", now=clock.now())

    binding.refresh_from_db()
    assert binding.state == BindingState.UNBOUND
    assert binding.unbound_at == clock.now()
    assert binding.unbound_by == staff
    assert binding.unbound_reason == "Customer moved servers"
    register_here()
    assert get_installation().state == "registered"
    active = Binding.objects.get(state=BindingState.ACTIVE)
    assert active.installation_id == new_installation
    assert active.first_bound == START + timedelta(days=3, hours=2)
    assert Binding.objects.count() == 2


def test_the_old_server_is_refused_after_the_license_moved(client: Client, frozen_clock, issue):
    """After the move, a scan from the first installation is the second one now."""
    lic, text = issue()
    upload_license(text.encode(), "container")
    old_challenge = register_here()
    old_token_installation = old_challenge.installation.installation_id
    binding = Binding.objects.get()
    unbind(binding.pk, actor=None, reason="moved", now=clock.now())
    new_server()
    upload_license(text.encode(), "container")
    register_here()

    # The old server re-registers (say, after a restart) with its own installation id.
    token = crafted_token(lic.license_id, installation_id=old_token_installation)
    response = client.get(reverse("phone:verify", kwargs={"token": token}))

    assert response.status_code == 409
    assert FULL in response.content.decode()


def test_the_same_installation_may_scan_again(frozen_clock, issue):
    _, text = issue()
    upload_license(text.encode(), "container")
    register_here()
    frozen_clock.advance(hours=1)

    refresh_challenge()  # re-register, for example after a restart
    register_here()

    assert Binding.objects.count() == 1
    assert Binding.objects.get().last_verified == START + timedelta(hours=1)


def test_unbinding_twice_changes_nothing(frozen_clock, issue):
    _, text = issue()
    upload_license(text.encode(), "container")
    register_here()
    binding = Binding.objects.get()
    unbind(binding.pk, actor=None, reason="first", now=clock.now())
    frozen_clock.advance(minutes=1)

    again = unbind(binding.pk, actor=None, reason="second", now=clock.now())

    assert again.unbound_reason == "first"
    assert AuditEvent.objects.filter(action=AuditAction.UNBIND).count() == 1
