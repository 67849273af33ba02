"""The phone page's one read (authority/phone_read.py) gives what the ORM gives: the
license's active binding with its license, the same values of the same Python types, the
other fields deferred, and nothing for a license without an active binding. Runs on SQLite
and, with DATABASE_URL, on PostgreSQL, whose converters differ."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registration import clock
from registration.authority.models import Binding, BindingState, IssuedLicense
from registration.authority.phone_read import (
    BINDING_FIELDS,
    LICENSE_FIELDS,
    _selected,
    active_binding,
)
from registration.flows.upload import upload_license
from tests.phone_steps import phone_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def bound(frozen_clock, issue) -> Binding:
    """A license bound by a real scan, revoked later so that revoked_at holds a time."""
    lic, text = issue(company="Nordwind Logistik GmbH", project_name="Quarterly Ledger")
    phone_code(upload_license(text.encode(), "container").challenge)
    binding = Binding.objects.get(license__license_id=lic.license_id)
    binding.chain_refused = ["00" * 16]
    binding.copied_at = clock.now()
    binding.save()
    IssuedLicense.objects.filter(pk=binding.license_id).update(revoked_at=clock.now())
    return Binding.objects.select_related("license").get(pk=binding.pk)


def test_it_reads_what_the_orm_reads_in_one_query(bound):
    with CaptureQueriesContext(connection) as captured:
        found = active_binding(bound.license.license_id)
        values = {name: getattr(found, name) for name in BINDING_FIELDS - {"license"}}
        license_values = {name: getattr(found.license, name) for name in LICENSE_FIELDS}
    assert len(captured.captured_queries) == 1
    for name, value in values.items():
        expected = getattr(bound, name)
        assert value == expected and type(value) is type(expected), name
    for name, value in license_values.items():
        expected = getattr(bound.license, name)
        assert value == expected and type(value) is type(expected), name
    assert found.license_id == bound.license.pk
    assert found._state.adding is False and found.license._state.adding is False


def test_the_other_fields_are_deferred_and_read_on_first_use(bound):
    found = active_binding(bound.license.license_id)
    assert "node_count" in found.get_deferred_fields()
    assert "kid" in found.license.get_deferred_fields()
    with CaptureQueriesContext(connection) as captured:
        assert found.first_bound == bound.first_bound
        assert found.license.kid == bound.license.kid
    assert len(captured.captured_queries) == 2


def test_a_saved_instance_keeps_its_other_fields(bound):
    found = active_binding(bound.license.license_id)
    found.last_nonce = "ab" * 16
    found.save(update_fields=["last_nonce"])
    again = Binding.objects.get(pk=bound.pk)
    assert again.last_nonce == "ab" * 16
    assert again.node_count == bound.node_count and again.chain_tip == bound.chain_tip


def test_no_active_binding_reads_nothing(bound, issue):
    assert active_binding(uuid.uuid4()) is None
    other, _text = issue(company="Other GmbH")
    assert active_binding(other.license_id) is None
    Binding.objects.filter(pk=bound.pk).update(
        state=BindingState.UNBOUND, unbound_at=clock.now(), unbound_reason="moved"
    )
    assert active_binding(bound.license.license_id) is None


def test_a_field_name_it_does_not_know_is_refused_as_only_would():
    with pytest.raises(FieldDoesNotExist, match="nodes_max"):
        _selected(IssuedLicense, frozenset({"id", "nodes_max"}))
