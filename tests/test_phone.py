"""The vendor's verification service: the page a phone opens from the QR code."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from registration import clock
from registration.authority.models import AuditAction, AuditEvent, Binding, IssuedLicense
from registration.authority.support import revoke
from registration.flows.code import Outcome, submit_code
from registration.flows.upload import upload_license
from registration.installation import get_installation
from registration.models import ChallengeState, QrChallenge
from registration.protocol.challenge import Purpose, encode_token, new_challenge
from tests.conftest import KID, START, make_license
from tests.phone_steps import crafted_token, made_up_token, shown_code

pytestmark = pytest.mark.django_db


# What a token whose MAC is wrong, or cannot be checked, gets (HTML-escaped as on the page).
ALTERED = (
    "The QR code has been altered, or its license is not in the vendor&#x27;s registry. "
    "Scan it again from the server; if it is refused again, contact the vendor."
)
MAIN = re.compile(r"<main>.*</main>", re.S)


def phone_url(token: str) -> str:
    return reverse("phone:verify", kwargs={"token": token})


def upload(text: str) -> QrChallenge:
    result = upload_license(text.encode(), "container")
    assert result.accepted, result.validation.causes
    return result.challenge


def test_valid_token_shows_the_code_tag_company_project_and_time_left(
    client: Client, frozen_clock, issue
):
    _, text = issue(company="Acme Ltd", project_name="Reports")
    challenge = upload(text)
    frozen_clock.advance(seconds=20)

    response = client.get(phone_url(challenge.token))

    assert response.status_code == 200
    body = response.content.decode()
    code = shown_code(body)
    assert code is not None and re.fullmatch(r"[0-9]{6}", code)
    assert f'id="challenge-tag">{challenge.tag}<' in body
    assert "<dd>Acme Ltd</dd>" in body and "<dd>Reports</dd>" in body
    assert 'id="countdown">4:40<' in body
    assert 'name="viewport"' in body
    assert response["Cache-Control"].startswith("max-age=0")
    # The console accepts exactly this code.
    assert submit_code(code).outcome == Outcome.ACCEPTED


def test_the_phone_page_gathers_none_of_the_consoles_context(client: Client, frozen_clock, issue):
    _, text = issue()
    response = client.get(phone_url(upload(text).token))

    assert response.status_code == 200
    # Rendered by the "phone" template engine: the request and the language, nothing more.
    # LANGUAGES and LANGUAGE_BIDI come from the i18n context processor only.
    assert "request" in response.context and "LANGUAGE_BIDI" in response.context
    assert "LANGUAGES" in response.context
    for name in ("restart_reminder", "registration", "user", "perms", "messages"):
        assert name not in response.context, name


def test_no_login_is_needed(client: Client, frozen_clock, issue):
    _, text = issue()
    response = client.get(phone_url(upload(text).token))

    assert response.status_code == 200
    assert "login" not in response.get("Location", "")


@pytest.mark.parametrize(
    "token",
    ["x", "NOT-BASE32!", "A" * 100, "A" * 1000, "ＡＢＣＤ", "%00%FF", "AAAA%20AAAA"],
)
def test_malformed_tokens_get_a_clear_400(client: Client, frozen_clock, token):
    response = client.get("/m/" + token)

    assert response.status_code == 400
    body = response.content.decode()
    assert "This QR code is not valid." in body
    assert "Scan the QR code again, or copy the whole link." in body
    assert 'id="verification-code"' not in body


def test_tampered_token_gets_400(client: Client, frozen_clock, issue):
    _, text = issue()
    token = upload(text).token
    raw = bytearray(base64.b32decode(token + "=" * (-len(token) % 8)))
    raw[40] ^= 0x01
    tampered = base64.b32encode(bytes(raw)).decode().rstrip("=")

    response = client.get(phone_url(tampered))

    assert response.status_code == 400
    assert ALTERED in response.content.decode()
    assert not Binding.objects.exists()


def test_token_for_an_unknown_key_id_gets_400(client: Client, frozen_clock, issue, settings):
    _, text = issue()
    token = upload(text).token
    settings.AUTHORITY_PRIVATE_KEY_FILES = {}

    response = client.get(phone_url(token))

    assert response.status_code == 400
    assert "This QR code was not made for this verification service." in (response.content.decode())


def test_expired_token_gets_410_at_5_00_not_at_4_59(client: Client, frozen_clock, issue):
    _, text = issue()
    token = upload(text).token
    frozen_clock.advance(minutes=4, seconds=59)
    assert client.get(phone_url(token)).status_code == 200
    frozen_clock.advance(seconds=1)

    response = client.get(phone_url(token))

    assert response.status_code == 410
    body = response.content.decode()
    assert "This QR code has expired." in body
    assert "Click Refresh on the server and scan the new QR code." in body
    assert 'id="verification-code"' not in body


def test_token_from_far_in_the_future_is_refused(client: Client, frozen_clock, issue):
    _, text = issue()
    token = upload(text).token
    frozen_clock.set(START - timedelta(minutes=5, seconds=1))

    response = client.get(phone_url(token))

    assert response.status_code == 400
    assert "clock is ahead" in response.content.decode()


def test_license_missing_from_the_registry_is_400_as_a_wrong_mac(
    client: Client, frozen_clock, sign
):
    lic = make_license()
    challenge = upload(sign(lic))  # signed, but never recorded as issued

    response = client.get(phone_url(challenge.token))

    # Without the license's secret the MAC cannot be checked: the token is answered as
    # any unverifiable one, so the page does not tell which license ids exist.
    assert response.status_code == 400
    assert ALTERED in response.content.decode()
    assert shown_code(response.content.decode()) is None


def test_made_up_tokens_get_one_answer_whether_the_license_id_is_known_or_not(
    client: Client, frozen_clock, issue
):
    known, _ = issue()

    for_known = client.get(phone_url(made_up_token(known.license_id)))
    for_unknown = client.get(phone_url(made_up_token(uuid.uuid4())))

    assert for_known.status_code == for_unknown.status_code == 400
    page = MAIN.search(for_known.content.decode()).group()
    assert page == MAIN.search(for_unknown.content.decode()).group()
    assert ALTERED in page
    assert not Binding.objects.exists()


@pytest.mark.parametrize("lifetime", [301, 3600, 10 * 365 * 24 * 3600])
def test_a_token_valid_longer_than_the_challenge_lifetime_is_refused(
    client: Client, frozen_clock, issue, lifetime
):
    # MAC and license are right (a holder of the license file made it): only its
    # lifetime breaks the rule, CHALLENGE_TTL_SECONDS (300).
    lic, _ = issue()

    response = client.get(phone_url(crafted_token(lic.license_id, ttl_seconds=lifetime)))

    assert response.status_code == 400
    body = response.content.decode()
    assert shown_code(body) is None
    assert "This QR code&#x27;s lifetime is not one the verification service accepts" in body
    assert "(at most 300 seconds)" in body
    assert not Binding.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.CODE_SHOWN).exists()


def test_the_challenge_lifetime_is_the_one_setting_both_sides_read(
    client: Client, frozen_clock, issue, settings
):
    lic, _ = issue()
    installation_id = uuid.uuid4()

    def scan(lifetime: int) -> int:
        token = crafted_token(lic.license_id, installation_id=installation_id, ttl_seconds=lifetime)
        return client.get(phone_url(token)).status_code

    assert scan(300) == 200
    settings.CHALLENGE_TTL_SECONDS = 600

    assert scan(600) == 200
    assert scan(601) == 400


def test_a_token_that_ends_before_it_starts_is_refused(client: Client, frozen_clock, issue):
    lic, _ = issue()

    response = client.get(phone_url(crafted_token(lic.license_id, ttl_seconds=0)))

    assert response.status_code == 400
    assert "lifetime is not one the verification service accepts" in response.content.decode()


def test_a_token_issued_up_to_one_lifetime_in_the_future_is_accepted_not_later(
    client: Client, frozen_clock, issue
):
    # The two clocks may disagree by one challenge lifetime (CHALLENGE_TTL_SECONDS).
    lic, _ = issue()
    at_the_limit = crafted_token(lic.license_id, issued_at=START + timedelta(seconds=300))
    beyond = crafted_token(lic.license_id, issued_at=START + timedelta(seconds=301))

    assert client.get(phone_url(at_the_limit)).status_code == 200
    response = client.get(phone_url(beyond))

    assert response.status_code == 400
    assert "The server&#x27;s clock is ahead of the verification service&#x27;s clock." in (
        response.content.decode()
    )


def test_revoked_license_is_403(client: Client, frozen_clock, issue):
    lic, text = issue()
    challenge = upload(text)
    row = IssuedLicense.objects.get(license_id=lic.license_id)
    revoke(row.pk, actor=None, reason="contract ended", now=clock.now())

    response = client.get(phone_url(challenge.token))

    assert response.status_code == 403
    assert "This license has been revoked." in response.content.decode()
    assert not Binding.objects.exists()
    refused = AuditEvent.objects.get(action=AuditAction.BINDING_REFUSED)
    assert refused.detail["problems"] == ["revoked"]


def test_license_expired_at_midnight_after_its_last_day(client: Client, frozen_clock, issue):
    _, text = issue(expires_at=date(2026, 6, 1))
    frozen_clock.set(datetime(2026, 6, 1, 23, 57, tzinfo=UTC))
    token = upload(text).token
    frozen_clock.set(datetime(2026, 6, 1, 23, 59, 59, tzinfo=UTC))
    assert client.get(phone_url(token)).status_code == 200
    frozen_clock.set(datetime(2026, 6, 2, 0, 0, 0, tzinfo=UTC))

    response = client.get(phone_url(token))

    assert response.status_code == 403
    body = response.content.decode()
    assert "License Expired" in body and "Expiration date: 2026/06/01" in body


def test_more_nodes_than_the_license_allows_is_license_exhausted(
    client: Client, frozen_clock, issue
):
    lic, _ = issue(max_nodes=2)
    assert client.get(phone_url(crafted_token(lic.license_id, node_count=2))).status_code == 200
    Binding.objects.all().delete()

    response = client.get(phone_url(crafted_token(lic.license_id, node_count=3)))

    assert response.status_code == 403
    body = response.content.decode()
    assert "License Exhausted" in body
    assert "Nodes: 3, maximum: 2" in body
    assert 'id="verification-code"' not in body
    assert not Binding.objects.exists()


def test_binding_is_recorded_then_refreshed_on_a_new_scan(client: Client, frozen_clock, issue):
    lic, text = issue(max_nodes=4)
    challenge = upload(text)
    installation_id = get_installation().installation_id

    client.get(phone_url(challenge.token))

    binding = Binding.objects.get()
    assert binding.license.license_id == lic.license_id
    assert binding.installation_id == installation_id
    assert (binding.first_bound, binding.last_verified) == (START, START)
    assert binding.node_count == 1
    assert binding.state == "active"

    frozen_clock.advance(minutes=7)
    token = crafted_token(lic.license_id, node_count=3, installation_id=installation_id)
    assert client.get(phone_url(token)).status_code == 200

    binding.refresh_from_db()
    assert binding.first_bound == START
    assert binding.last_verified == START + timedelta(minutes=7)
    assert binding.node_count == 3
    assert Binding.objects.count() == 1
    shown = AuditEvent.objects.filter(action=AuditAction.CODE_SHOWN)
    assert shown.count() == 2
    assert all(e.client_address == "127.0.0.1" for e in shown)


def test_rate_limit_per_client_address_is_429(client: Client, frozen_clock, settings):
    settings.RATE_PHONE = "3/m"
    for _ in range(3):
        assert client.get("/m/AAAA", REMOTE_ADDR="10.0.0.1").status_code == 400

    limited = client.get("/m/AAAA", REMOTE_ADDR="10.0.0.1")
    other_address = client.get("/m/AAAA", REMOTE_ADDR="10.0.0.2")
    spoofed = client.get("/m/AAAA", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="10.9.9.9")

    assert limited.status_code == 429
    assert "Too many requests" in limited.content.decode()
    assert other_address.status_code == 400
    assert spoofed.status_code == 429


def test_console_upload_and_code_are_rate_limited_too(manager_client, frozen_clock, settings):
    settings.RATE_CODE = "2/m"
    settings.RATE_UPLOAD = "1/m"
    url = reverse("registration:code")
    assert manager_client.post(url, {"code": "x"}).status_code == 400
    assert manager_client.post(url, {"code": "x"}).status_code == 400
    assert manager_client.post(url, {"code": "x"}).status_code == 429
    upload_url = reverse("registration:upload")
    assert manager_client.post(upload_url, {}).status_code == 400
    assert manager_client.post(upload_url, {}).status_code == 429


def test_phone_page_is_get_only(client: Client, frozen_clock):
    assert client.post("/m/AAAA").status_code == 405


def test_phone_scan_leaves_the_console_challenge_open(client: Client, frozen_clock, issue):
    _, text = issue()
    challenge = upload(text)

    client.get(phone_url(challenge.token))

    challenge.refresh_from_db()
    assert challenge.state == ChallengeState.OPEN


def test_reloading_the_page_shows_the_same_code_without_writing(
    client: Client, frozen_clock, issue, django_assert_num_queries
):
    _, text = issue()
    challenge = upload(text)
    first = shown_code(client.get(phone_url(challenge.token)).content.decode())
    binding = Binding.objects.get()
    entries = AuditEvent.objects.count()
    # Within the console's status cache life (this test process runs both sides, and an
    # older status is read again), so the count is the phone page's own.
    frozen_clock.advance(seconds=3)

    # One read of the binding with its license; no transaction, no audit entry.
    with django_assert_num_queries(1):
        again = client.get(phone_url(challenge.token))

    assert again.status_code == 200
    assert first is not None
    assert shown_code(again.content.decode()) == first
    assert AuditEvent.objects.count() == entries
    binding.refresh_from_db()
    assert binding.last_verified == START


def test_a_reload_after_a_revoke_is_refused(client: Client, frozen_clock, issue):
    lic, text = issue()
    challenge = upload(text)
    assert client.get(phone_url(challenge.token)).status_code == 200
    issued = IssuedLicense.objects.get(license_id=lic.license_id)
    revoke(issued.pk, actor=None, reason="contract ended", now=clock.now())

    response = client.get(phone_url(challenge.token))

    assert response.status_code == 403
    assert shown_code(response.content.decode()) is None


def test_a_token_made_without_the_license_file_binds_nothing(client: Client, frozen_clock, issue):
    # The license id is no secret (it is on every QR code); the license file is.
    lic, _ = issue(max_nodes=3)
    proto, key = new_challenge(
        purpose=Purpose.REGISTER,
        license_id=lic.license_id,
        installation_id=uuid.uuid4(),
        node_name="intruder",
        node_count=1,
        kid=KID,
        authority_public=base64.b64decode(django_settings.AUTHORITY_PUBLIC_KEYS[KID]),
        license_secret=bytes(32),
        now=clock.now(),
        ttl_seconds=300,
    )

    response = client.get(phone_url(encode_token(proto, key)))

    assert response.status_code == 400
    assert shown_code(response.content.decode()) is None
    assert not Binding.objects.exists()
    assert "Acme Ltd" not in response.content.decode()
