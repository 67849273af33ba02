"""Registered is true only with the console's seal: a database writer cannot make it so."""

from __future__ import annotations

import logging

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.urls import reverse

from registration.flows.upload import upload_license
from registration.gate import GateState, current_registration
from registration.installation import installation_for_update, save_installation
from registration.models import Installation, InstalledLicense, RegistrationState
from registration.seal import is_sealed, seal_for
from tests.node_steps import register

pytestmark = pytest.mark.django_db

PAGE = reverse("registration:registration")


def _gate_state() -> str:
    cache.clear()  # what a node reads after its status cache runs out
    return current_registration().state


def test_a_registration_through_the_code_is_sealed(frozen_clock, issue):
    _lic, text = issue()
    register(text)

    row = Installation.objects.select_related("license").get()
    assert row.state == RegistrationState.REGISTERED and is_sealed(row)
    assert _gate_state() == GateState.REGISTERED


def test_a_row_set_to_registered_in_the_database_is_read_as_unregistered(
    frozen_clock, issue, caplog, manager_client: Client
):
    _lic, text = issue()
    assert upload_license(text.encode(), "container").accepted
    # What a writer of the database does: no code, no phone, no vendor.
    Installation.objects.update(state="registered", registered_at=frozen_clock.now())

    with caplog.at_level(logging.ERROR, logger="registration.seal"):
        assert _gate_state() == GateState.UNREGISTERED
    assert "without this console's seal" in caplog.text
    page = manager_client.get(PAGE).content.decode()
    assert 'class="state state-unregistered' in page


def test_a_seal_made_with_another_secret_key_is_refused(frozen_clock, issue, settings):
    _lic, text = issue()
    register(text)
    row = Installation.objects.select_related("license").get()
    real_key = settings.SECRET_KEY
    settings.SECRET_KEY = "another console's secret key " + "z" * 30
    forged = seal_for(row.installation_id, row.license.license_id, text, row.registered_at)
    settings.SECRET_KEY = real_key
    Installation.objects.update(registration_seal=forged)

    assert _gate_state() == GateState.UNREGISTERED


def test_moving_the_registration_to_another_license_breaks_the_seal(frozen_clock, issue):
    _lic, text = issue()
    register(text)
    other_lic, other_text = issue(max_nodes=50)
    installed = InstalledLicense.objects.get()
    other = InstalledLicense.objects.create(
        **{
            **{f.name: getattr(installed, f.name) for f in InstalledLicense._meta.fields},
            "id": None,
            "license_id": other_lic.license_id,
            "text": other_text,
            "max_nodes": 50,
        }
    )
    Installation.objects.update(license=other)

    assert _gate_state() == GateState.UNREGISTERED


def test_leaving_registered_voids_the_seal_so_it_cannot_be_flipped_back(frozen_clock, issue):
    _lic, text = issue()
    register(text)
    with transaction.atomic():
        save_installation(installation_for_update(), state=RegistrationState.EXPIRED_DUE_TO_RESTART)
    assert Installation.objects.get().registration_seal == ""

    # The writer flips the state back, keeping registered_at: there is no seal to reuse.
    Installation.objects.update(state="registered")
    assert _gate_state() == GateState.UNREGISTERED
