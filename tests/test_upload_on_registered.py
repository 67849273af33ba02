"""Uploads that cannot de-register by accident: the installed license again changes nothing,
another one is installed only once the admin confirms what it ends, and a refused upload
says the registration is unchanged, on a page whose address survives a reload."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from registration.flows.code import Outcome, submit_code
from registration.flows.upload import UploadOutcome, upload_license
from registration.installation import get_installation
from registration.models import (
    AuditAction,
    AuditEvent,
    ChallengeState,
    InstalledLicense,
    QrChallenge,
    RegistrationState,
)
from registration.protocol.license import fingerprint
from tests.phone_steps import phone_code

pytestmark = pytest.mark.django_db

PAGE = reverse("registration:registration")
UPLOAD = reverse("registration:upload")
REFUSED = reverse("registration:upload_refused")
CONFIRM = reverse("registration:confirm_upload")
REPLACE = reverse("registration:replace_license")
FIRST = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def upload(client: Client, text: str, **extra):
    return client.post(
        UPLOAD,
        {"auth_method": "container", "license": SimpleUploadedFile("Container.lic", text.encode())},
        **extra,
    )


@pytest.fixture
def registered(frozen_clock, issue):
    """A Registered installation; returns (license, its file's text)."""
    lic, text = issue(issued_at=FIRST)
    result = upload_license(text.encode(), "container")
    assert submit_code(phone_code(result.challenge)).outcome == Outcome.ACCEPTED
    return lic, text


def snapshot() -> tuple:
    row = get_installation()
    return (row.state, row.license_id, row.version, InstalledLicense.objects.count())


# --- The flow -----------------------------------------------------------------------


def test_the_flow_changes_nothing_for_the_installed_license_on_a_registered_server(registered):
    _, text = registered
    before = snapshot()

    result = upload_license(text.encode(), "container")

    assert result.outcome == UploadOutcome.UNCHANGED and not result.accepted
    assert snapshot() == before
    assert not QrChallenge.objects.filter(state=ChallengeState.OPEN).exists()


def test_the_flow_asks_before_another_license_ends_a_registration(registered, issue):
    _, newer = issue(issued_at=FIRST + timedelta(days=1))
    before = snapshot()

    asked = upload_license(newer.encode(), "container")

    assert asked.outcome == UploadOutcome.NEEDS_CONFIRMATION
    assert snapshot() == before
    installed = upload_license(newer.encode(), "container", replace_registration=True)
    assert installed.outcome == UploadOutcome.INSTALLED and installed.accepted
    assert get_installation().state == RegistrationState.UNREGISTERED


def test_without_a_registration_an_upload_needs_no_confirmation(frozen_clock, issue):
    _, first = issue(issued_at=FIRST)
    assert upload_license(first.encode(), "container").outcome == UploadOutcome.INSTALLED
    _, newer = issue(issued_at=FIRST + timedelta(days=1))

    assert upload_license(newer.encode(), "container").outcome == UploadOutcome.INSTALLED


# --- The installed license again ----------------------------------------------------


def test_re_uploading_the_installed_license_changes_nothing_and_says_so(manager_client, registered):
    _, text = registered
    before = snapshot()

    response = upload(manager_client, text, follow=True)

    assert response.redirect_chain == [(PAGE, 302)]
    body = response.content.decode()
    assert "This license is already installed and registered. Nothing was changed." in body
    assert re.search(r'id="registration-state">\s*Registered\s*<', body)
    assert snapshot() == before
    assert AuditEvent.objects.filter(action=AuditAction.UPLOAD_ACCEPTED).count() == 1


# --- Another license: confirm first --------------------------------------------------


def test_another_license_on_a_registered_server_asks_first_naming_the_consequence(
    manager_client, registered, issue
):
    old, _ = registered
    new, newer = issue(issued_at=FIRST + timedelta(days=1), company="Acme Two")
    before = snapshot()

    response = upload(manager_client, newer)

    assert response.status_code == 302 and response["Location"] == CONFIRM
    assert snapshot() == before  # nothing installed yet: still Registered
    page = manager_client.get(CONFIRM)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Replace the installed license?" in body
    assert (
        "Installing this license ends the registration until its new QR code is scanned "
        "and the code entered."
    ) in body
    assert str(old.license_id) in body and str(new.license_id) in body and "Acme Two" in body
    assert 'id="replace-license"' in body and 'id="keep-license"' in body
    assert f'value="{fingerprint(newer)}"' in body
    assert newer not in body  # the file itself (a secret) never travels in the page


def test_confirming_installs_it_and_shows_its_qr_code(manager_client, registered, issue):
    new, newer = issue(issued_at=FIRST + timedelta(days=1))
    upload(manager_client, newer)

    response = manager_client.post(REPLACE, {"fingerprint": fingerprint(newer)}, follow=True)

    assert response.redirect_chain == [(PAGE, 302)]
    row = get_installation()
    assert row.state == RegistrationState.UNREGISTERED
    assert row.license.license_id == new.license_id
    assert 'id="qr-image"' in response.content.decode()
    # Confirmed once: the upload no longer waits.
    assert manager_client.get(CONFIRM)["Location"] == PAGE


def test_keeping_the_installed_license_drops_the_waiting_upload(manager_client, registered, issue):
    _, newer = issue(issued_at=FIRST + timedelta(days=1))
    upload(manager_client, newer)
    before = snapshot()

    assert manager_client.get(PAGE).status_code == 200  # "Keep the installed license"
    response = manager_client.post(REPLACE, {"fingerprint": fingerprint(newer)})

    assert response.status_code == 409
    assert "No upload is waiting for confirmation. Upload the license again." in response.text
    assert snapshot() == before


def test_a_confirmation_for_another_upload_than_the_one_waiting_is_409(
    manager_client, registered, issue
):
    _, newer = issue(issued_at=FIRST + timedelta(days=1))
    _, newest = issue(issued_at=FIRST + timedelta(days=2))
    upload(manager_client, newer)  # the page in the first tab
    upload(manager_client, newest)  # another tab uploads again
    before = snapshot()

    response = manager_client.post(REPLACE, {"fingerprint": fingerprint(newer)})

    assert response.status_code == 409
    assert "Another upload is waiting for confirmation" in response.text
    assert snapshot() == before


@pytest.mark.parametrize("data", [{}, {"fingerprint": ""}, {"fingerprint": "x" * 500}])
def test_a_bad_confirmation_is_4xx_never_500(manager_client, registered, issue, data):
    _, newer = issue(issued_at=FIRST + timedelta(days=1))
    upload(manager_client, newer)

    assert manager_client.post(REPLACE, data).status_code == 409
    assert get_installation().state == RegistrationState.REGISTERED


def test_the_confirmation_pages_need_login_permission_post_and_csrf(
    client, staff_client, csrf_client, registered, issue
):
    assert client.get(CONFIRM)["Location"] == f"{reverse('login')}?next={CONFIRM}"
    assert client.post(REPLACE)["Location"] == f"{reverse('login')}?next={REPLACE}"
    assert staff_client.get(CONFIRM).status_code == 403
    assert staff_client.post(REPLACE).status_code == 403
    _, newer = issue(issued_at=FIRST + timedelta(days=1))
    token = csrf_client.get(PAGE).cookies["csrftoken"].value
    assert upload(csrf_client, newer, HTTP_X_CSRFTOKEN=token)["Location"] == CONFIRM
    assert csrf_client.get(REPLACE).status_code == 405
    assert csrf_client.post(CONFIRM, HTTP_X_CSRFTOKEN=token).status_code == 405
    refused = csrf_client.post(REPLACE, {"fingerprint": fingerprint(newer)})
    assert refused.status_code == 403 and "CSRF" in refused.text
    assert get_installation().state == RegistrationState.REGISTERED


# --- A refused upload ---------------------------------------------------------------


def test_a_refused_upload_on_a_registered_server_says_the_registration_is_unchanged(
    manager_client, registered, issue
):
    _, bad = issue(issued_at=FIRST + timedelta(days=1), app_version="12.0")
    before = snapshot()

    response = upload(manager_client, bad, follow=True)

    assert response.redirect_chain == [(REFUSED, 302)]
    assert response.status_code == 422
    body = response.content.decode()
    assert "License refused: the registration is unchanged" in body
    assert "This server stays Registered with the installed license." in body
    assert "Registration failed" not in body
    assert re.search(r'id="registration-state">\s*Registered\s*<', body)
    assert "<strong>Version Mismatch</strong>" in body
    assert snapshot() == before


def test_a_refused_upload_page_survives_a_reload(manager_client, frozen_clock, issue):
    _, bad = issue(app_version="12.0")
    first = upload(manager_client, bad, follow=True)

    again = manager_client.get(REFUSED)  # the browser's reload: a GET of the same address

    assert again.status_code == 422
    for response in (first, again):
        body = response.content.decode()
        assert "Registration failed" in body and "<strong>Version Mismatch</strong>" in body
        assert 'id="upload-license"' in body  # the form, to try another file


def test_an_accepted_upload_ends_the_refusal_page(manager_client, frozen_clock, issue):
    _, bad = issue(app_version="12.0")
    upload(manager_client, bad)
    _, good = issue()

    assert upload(manager_client, good)["Location"] == PAGE
    assert manager_client.get(REFUSED)["Location"] == PAGE


def test_the_refusal_page_without_a_refusal_goes_back_to_registration(manager_client):
    response = manager_client.get(REFUSED)

    assert response.status_code == 302 and response["Location"] == PAGE


def test_the_refusal_page_needs_login_and_permission(client, staff_client):
    assert client.get(REFUSED)["Location"] == f"{reverse('login')}?next={REFUSED}"
    assert staff_client.get(REFUSED).status_code == 403
    assert staff_client.post(REFUSED).status_code == 405
