"""One date format across pages: 2024/02/01 and 2024/02/01 22:27:45, on the console, in the
license request email and in the Django admin, in both languages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from registration.authority.models import Binding
from registration.flows.upload import upload_license
from tests.phone_steps import phone_code

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_version_information_writes_the_build_date_like_every_page(manager_client, lang):
    body = manager_client.get(
        reverse("registration:version"), HTTP_ACCEPT_LANGUAGE=lang
    ).content.decode()

    assert 'id="build-date">2024/02/01<' in body


@pytest.mark.parametrize("lang", ["en", "zh-hans"])
def test_the_admin_writes_dates_and_times_the_same_way(admin_client, frozen_clock, issue, lang):
    lic, text = issue()
    phone_code(upload_license(text.encode(), "container").challenge)
    binding = Binding.objects.get(license__license_id=lic.license_id)

    body = admin_client.get(
        reverse("admin:authority_binding_change", args=[binding.pk]), HTTP_ACCEPT_LANGUAGE=lang
    ).content.decode()

    assert "2026/06/01 12:00:00" in body  # first bound, by the frozen clock
    assert "June 1, 2026" not in body and "2026年6月1日" not in body
