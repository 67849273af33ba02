"""Entering the verification code: format, expiry, replay, attempts and the lockout."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.urls import reverse

from registration import clock
from registration.flows.challenge import refresh_challenge
from registration.flows.code import Outcome, lockout_minutes, submit_code
from registration.flows.upload import upload_license
from registration.installation import get_installation
from registration.models import AuditAction, AuditEvent, ChallengeState, QrChallenge
from registration.protocol.challenge import Purpose, authority_key, code_for, decode_token
from registration.protocol.keys import load_authority_key
from registration.protocol.license import license_secret
from tests.conftest import KID, START
from tests.phone_steps import phone_code, wrong_code

pytestmark = pytest.mark.django_db

CODE = reverse("registration:code")
REFRESH = reverse("registration:challenge")
PAGE = reverse("registration:registration")


@pytest.fixture(autouse=True)
def generous_rate_limit(settings):
    """These tests submit many codes within one real minute; the limit is not the subject."""
    settings.RATE_CODE = "1000/m"
    settings.RATE_CHALLENGE = "1000/m"


@pytest.fixture
def registered_license(frozen_clock, issue):
    """A license uploaded at START, with its first challenge open."""
    _, text = issue()
    result = upload_license(text.encode(), "container")
    assert result.accepted
    return result


def open_challenge() -> QrChallenge:
    return QrChallenge.objects.get(state=ChallengeState.OPEN)


def failed_attempts() -> int:
    return get_installation().failed_attempts


def submit(client, code: str):
    response = client.post(CODE, {"code": code})
    return response.status_code, response.content.decode()


@pytest.mark.parametrize(
    "code",
    ["１２３４５６", "١٢٣٤٥٦", "12_34_56", "+12345", "1234567", "", "12a456", "12345", "-12345"],
)
def test_format_errors_are_400_and_not_attempts(manager_client, registered_license, code):
    status, body = submit(manager_client, code)

    assert status == 400
    assert failed_attempts() == 0
    assert not AuditEvent.objects.filter(action=AuditAction.CODE_REFUSED).exists()
    if code:
        assert "Enter the 6-digit verification code shown on your phone" in body
    else:
        assert "This field is required." in body


def test_many_format_errors_leave_all_five_attempts(manager_client, registered_license):
    for _ in range(10):
        submit(manager_client, "12a456")

    status, body = submit(manager_client, wrong_code(open_challenge()))

    assert status == 400
    assert "Incorrect verification code. 4 attempts left." in body


def test_spaces_are_trimmed(manager_client, registered_license):
    code = phone_code(open_challenge())

    status, _ = submit(manager_client, f" {code[:3]} {code[3:]} ")

    assert status == 302
    assert get_installation().state == "registered"


def test_wrong_codes_count_down_then_lock(manager_client, registered_license):
    wrong = wrong_code(open_challenge())
    for left, word in [(4, "attempts"), (3, "attempts"), (2, "attempts"), (1, "attempt")]:
        status, body = submit(manager_client, wrong)
        assert status == 400
        assert f"Incorrect verification code. {left} {word} left." in body
        assert failed_attempts() == 5 - left

    status, body = submit(manager_client, wrong)

    assert status == 429
    assert "Code entry locked until 12:15:00" in body
    installation = get_installation()
    assert installation.failed_attempts == 5
    assert installation.locked_until == START + timedelta(minutes=15)
    assert installation.lock_count == 1


def test_correct_code_at_4_59_is_accepted(manager_client, registered_license, frozen_clock):
    code = phone_code(open_challenge())
    frozen_clock.advance(minutes=4, seconds=59)

    status, _ = submit(manager_client, code)

    assert status == 302
    assert get_installation().state == "registered"


def test_correct_code_at_5_00_is_expired_and_not_an_attempt(
    manager_client, registered_license, frozen_clock
):
    code = phone_code(open_challenge())
    frozen_clock.advance(minutes=5)

    status, body = submit(manager_client, code)

    assert status == 410
    assert "The QR code has expired. Click Refresh and scan the new one." in body
    assert get_installation().state == "unregistered"
    assert failed_attempts() == 0


def test_replayed_code_is_refused(manager_client, registered_license, frozen_clock):
    code = phone_code(open_challenge())
    assert submit(manager_client, code)[0] == 302
    frozen_clock.advance(seconds=1)

    status, body = submit(manager_client, code)

    assert status == 409
    assert "No QR code is waiting for a code." in body
    assert AuditEvent.objects.filter(action=AuditAction.CODE_ACCEPTED).count() == 1


def test_lock_for_15_minutes_then_the_right_code_works(
    manager_client, registered_license, frozen_clock
):
    wrong = wrong_code(open_challenge())
    for _ in range(5):
        submit(manager_client, wrong)
    frozen_clock.set(START + timedelta(minutes=14, seconds=59))
    manager_client.post(REFRESH)  # the first QR has expired long ago
    code = phone_code(open_challenge())

    status, body = submit(manager_client, code)

    assert status == 429
    assert "Submissions are locked until 12:15:00 UTC (server time)." in body
    assert get_installation().state == "unregistered"
    frozen_clock.set(START + timedelta(minutes=15))

    status, _ = submit(manager_client, code)

    assert status == 302
    installation = get_installation()
    assert installation.state == "registered"
    assert (installation.failed_attempts, installation.lock_count) == (0, 0)
    assert installation.locked_until is None


def test_locked_submissions_are_not_checked(manager_client, registered_license, frozen_clock):
    wrong = wrong_code(open_challenge())
    for _ in range(5):
        submit(manager_client, wrong)
    refusals = AuditEvent.objects.filter(action__in=["code_refused", "locked"]).count()

    for _ in range(3):
        assert submit(manager_client, wrong)[0] == 429

    assert failed_attempts() == 5
    assert AuditEvent.objects.filter(action__in=["code_refused", "locked"]).count() == refusals
    assert get_installation().locked_until == START + timedelta(minutes=15)


def test_a_new_qr_neither_unlocks_nor_resets_the_counter(
    manager_client, registered_license, frozen_clock, settings
):
    for _ in range(3):
        submit(manager_client, wrong_code(open_challenge()))
    manager_client.post(REFRESH)

    status, body = submit(manager_client, wrong_code(open_challenge()))

    assert "Incorrect verification code. 1 attempt left." in body
    submit(manager_client, wrong_code(open_challenge()))
    manager_client.post(REFRESH)
    settings.NODE_NAME = "node-b"  # another node reads the same row
    status, body = submit(manager_client, phone_code(open_challenge()))
    assert status == 429
    assert "Code entry locked until 12:15:00" in body


def test_success_resets_the_counter(manager_client, registered_license, frozen_clock):
    for _ in range(4):
        submit(manager_client, wrong_code(open_challenge()))
    assert submit(manager_client, phone_code(open_challenge()))[0] == 302
    assert failed_attempts() == 0
    manager_client.post(REFRESH)  # re-register

    status, body = submit(manager_client, wrong_code(open_challenge()))

    assert "Incorrect verification code. 4 attempts left." in body


def test_lock_minutes_double_up_to_the_cap(settings):
    assert settings.LOCKOUT_MAX_MINUTES == 1440
    schedule = [lockout_minutes(n) for n in range(10)]

    assert schedule == [15, 30, 60, 120, 240, 480, 960, 1440, 1440, 1440]
    assert lockout_minutes(10_000) == 1440


def test_each_further_lock_lasts_twice_as_long_until_a_success(registered_license, frozen_clock):
    durations = []
    for _ in range(9):
        refresh_challenge()
        wrong = wrong_code(open_challenge())
        results = [submit_code(wrong) for _ in range(5)]
        assert [r.outcome for r in results] == [Outcome.WRONG] * 4 + [Outcome.WRONG_AND_LOCKED]
        locked_until = results[-1].locked_until
        durations.append(int((locked_until - clock.now()).total_seconds() // 60))
        # One second before the end it still holds; at the end it is lifted.
        frozen_clock.set(locked_until - timedelta(seconds=1))
        assert submit_code(wrong).outcome == Outcome.LOCKED
        frozen_clock.set(locked_until)

    assert durations == [15, 30, 60, 120, 240, 480, 960, 1440, 1440]
    refresh_challenge()
    assert submit_code(phone_code(open_challenge())).outcome == Outcome.ACCEPTED
    assert get_installation().lock_count == 0
    refresh_challenge()
    for _ in range(5):
        last = submit_code(wrong_code(open_challenge()))
    assert last.locked_until - clock.now() == timedelta(minutes=15)


def test_code_for_another_challenge_purpose_or_installation_is_refused(
    manager_client, registered_license, key_dir
):
    challenge = open_challenge()
    proto, _mac = decode_token(challenge.token)
    vendor_key = authority_key(
        proto,
        load_authority_key(key_dir / f"{KID}.x25519.pem"),
        license_secret(challenge.license.text),
    )
    right = phone_code(challenge)
    variants = [
        replace(proto, purpose=Purpose.RE_REGISTER),
        replace(proto, installation_id=uuid.uuid4()),
        replace(proto, nonce=bytes(16)),
    ]
    codes = [code_for(v, vendor_key) for v in variants]
    assert right not in codes  # one chance in a million each

    for left, code in zip((4, 3, 2), codes, strict=True):
        status, body = submit(manager_client, code)
        assert status == 400
        assert f"Incorrect verification code. {left} attempts left." in body
    assert submit(manager_client, right)[0] == 302


def test_a_failed_audit_write_after_the_comparison_still_counts(
    manager_client, registered_license, monkeypatch
):
    real_record = AuditEvent.record

    def failing_record(action, **kwargs):
        if action in (AuditAction.CODE_REFUSED, AuditAction.LOCKED):
            raise DatabaseError("audit table unavailable")
        return real_record(action, **kwargs)

    monkeypatch.setattr(AuditEvent, "record", failing_record)
    wrong = wrong_code(open_challenge())

    status, body = submit(manager_client, wrong)

    assert status == 400
    assert "Incorrect verification code. 4 attempts left." in body
    assert failed_attempts() == 1
    for _ in range(4):
        status, body = submit(manager_client, wrong)
    assert status == 429
    installation = get_installation()
    assert installation.failed_attempts == 5
    assert installation.locked_until == START + timedelta(minutes=15)
    assert not AuditEvent.objects.filter(action__in=["code_refused", "locked"]).exists()


def test_page_shows_the_lock_to_every_visitor(manager_client, registered_license, frozen_clock):
    for _ in range(5):
        submit(manager_client, wrong_code(open_challenge()))
    frozen_clock.advance(minutes=3, seconds=7)

    body = manager_client.get(PAGE).content.decode()

    assert "Code entry locked until 12:15:00" in body
    assert 'id="lock-message"' in body
