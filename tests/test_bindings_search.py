"""Support staff find a customer's binding by what the customer tells them: the company,
the project, or the installation id that Version Information and the license request
email show."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from registration.authority.models import Binding
from registration.flows.upload import upload_license
from registration.installation import get_installation
from tests.phone_steps import phone_code

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:authority_binding_changelist")


@pytest.fixture
def support(django_user_model) -> Client:
    user = django_user_model.objects.create_user("support", password="pw-support-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_binding"]))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def binding(frozen_clock, issue) -> Binding:
    lic, text = issue(company="Nordwind Logistik GmbH", project_name="Quarterly Ledger")
    phone_code(upload_license(text.encode(), "container").challenge)
    return Binding.objects.get(license__license_id=lic.license_id)


def found(client: Client, query: str) -> list[Binding]:
    response = client.get(CHANGELIST, {"q": query})
    assert response.status_code == 200
    return list(response.context["cl"].queryset)


@pytest.mark.parametrize("query", ["Nordwind", "Quarterly Ledger", "ledger"])
def test_support_staff_find_a_binding_by_company_or_project(support, binding, query):
    assert found(support, query) == [binding]


def test_support_staff_find_a_binding_by_the_installation_id_the_customer_reads_out(
    support, binding, manager_client
):
    installation_id = str(get_installation().installation_id)
    version = manager_client.get(reverse("registration:version")).content.decode()
    assert installation_id in version  # what the customer reads out

    assert found(support, installation_id) == [binding]
    assert found(support, "no such company") == []
