"""The Registration page from upload to Registered, through the real views."""

from __future__ import annotations

import base64
import io
import re
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import zxingcpp
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from registration import clock
from registration.flows.challenge import refresh_challenge
from registration.flows.code import Outcome, submit_code
from registration.installation import get_installation
from registration.models import (
    AuditAction,
    AuditEvent,
    ChallengeState,
    InstalledLicense,
    QrChallenge,
    RegistrationState,
)
from tests.conftest import START
from tests.phone_steps import phone_code, wrong_code

pytestmark = pytest.mark.django_db

PAGE = reverse("registration:registration")
UPLOAD = reverse("registration:upload")
REFRESH = reverse("registration:challenge")
CODE = reverse("registration:code")


def upload(client: Client, text: str, auth_method: str = "container", *, follow: bool = False):
    """Upload as the page's form does; follow=True ends on the page a refusal redirects to."""
    return client.post(
        UPLOAD,
        {
            "auth_method": auth_method,
            "license": SimpleUploadedFile("Container.lic", text.encode()),
        },
        follow=follow,
    )


def open_challenge() -> QrChallenge:
    return QrChallenge.objects.get(state=ChallengeState.OPEN)


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def test_accepted_upload_shows_qr_tag_link_and_countdown(manager_client, frozen_clock, issue):
    lic, text = issue()

    response = upload(manager_client, text)

    assert response.status_code == 302
    assert response["Location"] == PAGE
    page = manager_client.get(PAGE)
    body = page.content.decode()
    challenge = open_challenge()
    # The QR image is inside the page and decodes to the link shown under it.
    data_uri = re.search(r'id="qr-image" src="data:image/png;base64,([^"]+)"', body)
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(base64.b64decode(data_uri[1]))))
    assert [code.text for code in decoded] == [f"http://testserver/m/{challenge.token}"]
    assert f'id="challenge-tag">{challenge.tag}<' in body
    assert f'id="challenge-link">http://testserver/m/{challenge.token}<' in body
    assert 'id="countdown">5:00<' in body
    assert "License uploaded. Scan the QR code with your phone." in body
    assert 'id="registration-state"' in body and "Unregistered" in body
    assert str(lic.license_id) in body
    # The license text is stored verbatim.
    assert InstalledLicense.objects.get().text == text
    frozen_clock.advance(minutes=4, seconds=59)
    assert 'id="countdown">0:01<' in manager_client.get(PAGE).content.decode()


def test_code_from_the_phone_registers_the_installation(manager_client, frozen_clock, issue):
    lic, text = issue(max_nodes=3)
    upload(manager_client, text)

    response = manager_client.post(CODE, {"code": f" {phone_code(open_challenge())} "})

    assert response.status_code == 302
    body = manager_client.get(PAGE).content.decode()
    assert "Registration successful." in body
    assert re.search(r'id="registration-state">\s*Registered', body)
    assert "Acme Ltd" in body and "Reports" in body and "2027/01/31" in body
    assert 'id="nodes-used">1 of 3<' in body
    installation = get_installation()
    assert installation.state == RegistrationState.REGISTERED
    assert installation.registered_at == clock.now()
    assert not QrChallenge.objects.filter(state=ChallengeState.OPEN).exists()


def test_rejected_upload_lists_every_cause_with_exact_details(manager_client, frozen_clock, issue):
    _, text = issue(
        app_name="OtherServer",
        app_version="12.0",
        project_content="dashboards",
        expires_at=date(2026, 5, 31),
        max_nodes=1,
    )

    response = upload(manager_client, text, follow=True)

    assert response.status_code == 422
    body = response.content.decode()
    assert 'id="registration-failed"' in body and "Registration failed" in body
    titles = re.findall(r'<li class="cause" data-code="[a-z_]+"><strong>([^<]+)</strong>', body)
    assert titles == [
        "License Expired",
        "Version Mismatch",
        "App Name Mismatch",
        "Project Content Mismatch",
    ]
    details = re.findall(r"<dd>([^<]+)</dd>", body.split('id="failure-details"')[1])
    assert details == [
        "Expiration date: 2026/05/31",
        "Certified application version : 12.0",
        "Local application version : 11.0",
        "Authentication application name: OtherServer",
        "Local application name: ReportServer",
        "Authentication project content: dashboards",
        "Local project content: reports",
    ]
    assert "<summary>Details</summary>" in body
    assert not InstalledLicense.objects.exists()
    assert not QrChallenge.objects.exists()
    event = AuditEvent.objects.get(action=AuditAction.UPLOAD_REFUSED)
    assert event.detail["causes"] == [
        "license_expired",
        "version_mismatch",
        "app_name_mismatch",
        "project_content_mismatch",
    ]


def test_garbage_upload_is_license_content_incorrect(manager_client, frozen_clock):
    response = upload(manager_client, "not a license at all", follow=True)

    assert response.status_code == 422
    body = response.content.decode()
    assert "<strong>License content is incorrect</strong>" in body
    assert not InstalledLicense.objects.exists()


def test_rejected_upload_keeps_the_installed_license_and_registration(
    manager_client, frozen_clock, issue
):
    _, good = issue()
    upload(manager_client, good)
    manager_client.post(CODE, {"code": phone_code(open_challenge())})
    installed = get_installation().license
    _, bad = issue(app_version="12.0")

    response = upload(manager_client, bad, follow=True)

    assert response.status_code == 422
    installation = get_installation()
    assert installation.license == installed
    assert installation.state == RegistrationState.REGISTERED
    assert InstalledLicense.objects.count() == 1


def test_older_license_than_the_installed_one_is_refused(manager_client, frozen_clock, issue):
    _, newer = issue(issued_at=datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    upload(manager_client, newer)
    installed = get_installation().license
    _, older = issue(issued_at=datetime(2026, 2, 1, 8, 0, tzinfo=UTC))

    response = upload(manager_client, older, follow=True)

    assert response.status_code == 422
    body = response.content.decode()
    assert 'data-code="license_superseded"><strong>License Superseded</strong>' in body
    assert "<dd>Uploaded license issued at 2026/02/01 08:00:00 UTC</dd>" in body
    assert "<dd>Installed license issued at 2026/03/01 08:00:00 UTC</dd>" in body
    assert get_installation().license == installed
    event = AuditEvent.objects.filter(action=AuditAction.UPLOAD_REFUSED).get()
    assert event.detail["causes"] == ["license_superseded"]


def test_a_newer_license_replaces_the_installed_one(manager_client, frozen_clock, issue):
    _, first = issue(issued_at=datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    upload(manager_client, first)
    lic, newer = issue(issued_at=datetime(2026, 3, 1, 8, 0, 1, tzinfo=UTC))

    assert upload(manager_client, newer).status_code == 302
    assert get_installation().license.license_id == lic.license_id


def test_another_license_issued_in_the_same_second_is_superseded(
    manager_client, frozen_clock, issue
):
    installed, first = issue(issued_at=datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    upload(manager_client, first)
    _, same_second = issue(issued_at=datetime(2026, 3, 1, 8, 0, tzinfo=UTC))

    response = upload(manager_client, same_second, follow=True)

    assert response.status_code == 422
    body = response.content.decode()
    assert 'data-code="license_superseded"><strong>License Superseded</strong>' in body
    assert "<dd>Uploaded license issued at 2026/03/01 08:00:00 UTC</dd>" in body
    assert "<dd>Installed license issued at 2026/03/01 08:00:00 UTC</dd>" in body
    assert "<dd>Another license issued in the same second is installed.</dd>" in body
    assert get_installation().license.license_id == installed.license_id


def test_the_installed_license_may_be_uploaded_again(manager_client, frozen_clock, issue):
    lic, text = issue(issued_at=datetime(2026, 3, 1, 8, 0, tzinfo=UTC))
    upload(manager_client, text)

    assert upload(manager_client, text).status_code == 302
    assert get_installation().license.license_id == lic.license_id


@pytest.mark.parametrize(
    "issued_at",
    [datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), START + timedelta(minutes=5, seconds=1)],
)
def test_a_license_issued_in_the_future_is_refused_and_supersedes_nothing(
    manager_client, frozen_clock, issue, issued_at
):
    _, future = issue(issued_at=issued_at)

    response = upload(manager_client, future, follow=True)

    assert response.status_code == 422
    body = response.content.decode()
    assert 'data-code="license_content_incorrect"' in body
    stamp = f"{issued_at:%Y/%m/%d %H:%M:%S}"
    assert f"License issued at {stamp} UTC, later than this server&#x27;s time" in body
    assert get_installation().license is None
    event = AuditEvent.objects.filter(action=AuditAction.UPLOAD_REFUSED).get()
    assert event.detail["causes"] == ["license_content_incorrect"]
    # A real license issued today is not "older" than the refused one.
    lic, today = issue(issued_at=START)
    assert upload(manager_client, today).status_code == 302
    assert get_installation().license.license_id == lic.license_id


def test_a_license_issued_up_to_one_challenge_lifetime_ahead_is_accepted(
    manager_client, frozen_clock, issue
):
    # The vendor's clock may run ahead of the database's by CHALLENGE_TTL_SECONDS (300).
    _, ahead = issue(issued_at=START + timedelta(minutes=5))

    assert upload(manager_client, ahead).status_code == 302


def test_refresh_supersedes_the_old_challenge_and_its_code(manager_client, frozen_clock, issue):
    _, text = issue()
    upload(manager_client, text)
    old = open_challenge()
    old_code = phone_code(old)
    installation_id = get_installation().installation_id

    response = manager_client.post(REFRESH)

    assert response.status_code == 302
    old.refresh_from_db()
    assert old.state == ChallengeState.SUPERSEDED
    new = open_challenge()
    assert new.pk != old.pk and new.token != old.token
    while phone_code(new) == old_code:  # one chance in a million: draw again
        manager_client.post(REFRESH)
        new = open_challenge()
    refused = manager_client.post(CODE, {"code": old_code})
    assert refused.status_code == 400
    assert "Incorrect verification code. 4 attempts left." in refused.content.decode()
    assert get_installation().installation_id == installation_id
    assert manager_client.post(CODE, {"code": phone_code(new)}).status_code == 302
    assert get_installation().installation_id == installation_id


def test_refresh_without_a_license_says_upload_first(manager_client, frozen_clock):
    response = manager_client.post(REFRESH)

    assert response.status_code == 409
    assert "Upload a license first." in response.content.decode()


def test_refresh_rechecks_the_license(manager_client, frozen_clock, issue):
    _, text = issue(expires_at=date(2026, 6, 1))
    upload(manager_client, text)
    frozen_clock.set(datetime(2026, 6, 2, 0, 0, tzinfo=UTC))

    response = manager_client.post(REFRESH)

    assert response.status_code == 422
    assert "<dd>Expiration date: 2026/06/01</dd>" in response.content.decode()


def test_installation_id_is_made_once_and_kept(manager_client, frozen_clock, issue):
    first = get_installation().installation_id
    _, text = issue()
    upload(manager_client, text)
    manager_client.post(REFRESH)

    assert get_installation().installation_id == first
    assert {c.installation_id for c in QrChallenge.objects.all()} == {get_installation().pk}
    assert isinstance(first, uuid.UUID)


def test_audit_log_follows_the_whole_registration(manager_client, manager, frozen_clock, issue):
    _, bad = issue(app_version="12.0")
    lic, good = issue()
    upload(manager_client, bad)
    upload(manager_client, good)
    manager_client.post(REFRESH)
    manager_client.post(CODE, {"code": wrong_code(open_challenge())})
    manager_client.post(CODE, {"code": phone_code(open_challenge())})

    console_actions = actions()
    expected = [
        AuditAction.UPLOAD_REFUSED,
        AuditAction.UPLOAD_ACCEPTED,
        AuditAction.CHALLENGE_ISSUED,
        AuditAction.CHALLENGE_ISSUED,
        AuditAction.CODE_REFUSED,
        AuditAction.CODE_ACCEPTED,
    ]
    assert console_actions == expected
    installation_id = get_installation().installation_id
    for event in AuditEvent.objects.filter(action__in=expected):
        assert event.actor == manager
        assert event.actor_label == "manager"
        assert event.installation_id == installation_id
        assert event.at == clock.now()
    accepted = AuditEvent.objects.get(action=AuditAction.UPLOAD_ACCEPTED)
    assert accepted.license_id == lic.license_id
    assert accepted.client_address == "127.0.0.1"


def test_lock_is_audited_and_the_page_says_until_when(manager_client, frozen_clock, issue):
    _, text = issue()
    upload(manager_client, text)
    wrong = wrong_code(open_challenge())
    for _ in range(4):
        manager_client.post(CODE, {"code": wrong})

    response = manager_client.post(CODE, {"code": wrong})

    assert response.status_code == 429
    body = response.content.decode()
    assert "Code entry locked until 12:15:00" in body
    assert "Submissions are locked until 12:15:00 UTC (server time)." in body
    lock = AuditEvent.objects.get(action=AuditAction.LOCKED)
    assert lock.detail == {"failed_attempts": 5, "locked_until": "2026-06-01T12:15:00+00:00"}
    assert AuditEvent.objects.filter(action=AuditAction.CODE_REFUSED).count() == 4
    assert "Code entry locked until 12:15:00" in manager_client.get(PAGE).content.decode()
    frozen_clock.advance(minutes=15)
    assert "locked until" not in manager_client.get(PAGE).content.decode()


def test_register_now_opens_the_form_with_local_container(manager_client):
    body = manager_client.get(PAGE).content.decode()
    assert 'id="register-now"' in body
    assert 'id="register-form"' not in body

    body = manager_client.get(PAGE + "?register=1").content.decode()

    assert 'id="register-form"' in body
    assert "AUTH Method" in body
    assert '<option value="container">Local Container</option>' in body
    assert 'id="upload-license"' in body and "Upload License" in body


def test_upload_form_errors_are_400_and_store_nothing(manager_client, frozen_clock, issue):
    _, text = issue()

    wrong_method = upload(manager_client, text, auth_method="machine")
    empty = upload(manager_client, "   ")

    assert wrong_method.status_code == 400
    assert empty.status_code == 400
    assert "The file is empty." in empty.content.decode()
    assert not InstalledLicense.objects.exists()


def test_a_registration_whose_license_ran_out_says_so(manager_client, frozen_clock, issue):
    _, text = issue(expires_at=date(2026, 6, 30))
    upload(manager_client, text)
    assert submit_code(phone_code(open_challenge())).outcome == Outcome.ACCEPTED
    assert "Registered" in manager_client.get(PAGE).content.decode()

    frozen_clock.set(datetime(2026, 7, 1, 0, 0, tzinfo=UTC))
    body = manager_client.get(PAGE).content.decode()

    state = re.search(r'id="registration-state">\s*(.*?)\s*</p>', body, re.S)[1]
    assert state == "License expired on 2026/06/30"


def test_no_response_carrying_the_qr_token_is_cacheable(manager_client, frozen_clock, issue):
    _, text = issue()
    upload(manager_client, text)
    challenge = open_challenge()
    responses = [
        manager_client.get(PAGE),
        manager_client.post(reverse("registration:code"), {"code": "12"}),  # format error
    ]
    for response in responses:
        assert challenge.token.encode() in response.content
        assert "no-store" in response["Cache-Control"]


def test_a_closed_challenge_keeps_no_verifier(manager_client, frozen_clock, issue):
    _, text = issue()
    upload(manager_client, text)
    first = open_challenge()
    refresh_challenge()
    second = open_challenge()
    assert submit_code(phone_code(second)).outcome == Outcome.ACCEPTED

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, first.code_verifier) == (ChallengeState.SUPERSEDED, "")
    assert (second.state, second.code_verifier) == (ChallengeState.CONSUMED, "")
