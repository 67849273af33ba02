"""Moving servers without a support ticket: Release license on the console, the release QR
code on the phone, and the vendor's rules (authority/release.py): only the live
installation releases, at most SELF_SERVICE_MOVES_PER_YEAR moves per license a year."""

from __future__ import annotations

import secrets
from datetime import date, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from registration import clock
from registration.authority.binding import ProblemCode, verify_for_phone
from registration.authority.models import AuditAction as VendorAction
from registration.authority.models import AuditEvent as VendorEvent
from registration.authority.models import Binding, BindingState
from registration.authority.support import unbind
from registration.flows.challenge import refresh_challenge
from registration.flows.code import Outcome, submit_code
from registration.flows.release import release_registration
from registration.flows.upload import upload_license
from registration.installation import get_installation
from registration.models import AuditAction, AuditEvent, ChallengeState, Installation, QrChallenge
from registration.protocol.challenge import CHAIN_BYTES, Purpose, decode_token
from tests.conftest import START
from tests.copy_steps import ConsoleCopy
from tests.phone_steps import (
    crafted_token,
    made_up_token,
    phone_code,
    v1_token,
    vendor_chain_value,
)
from tests.test_renewal import renew

pytestmark = pytest.mark.django_db

PAGE = reverse("registration:registration")
RELEASE = reverse("registration:release")
REPORTS = "/reports/"
RELEASED = "Released. Register the new server with the same Container.lic."


@pytest.fixture
def registered(frozen_clock, issue):
    """A console Registered under a license the vendor bound through a scan."""
    lic, text = issue(expires_at=date(2028, 12, 31))
    result = upload_license(text.encode(), "container")
    assert submit_code(phone_code(result.challenge)).outcome == Outcome.ACCEPTED
    return lic, text


def phone(client: Client, token: str):
    return client.get(reverse("phone:verify", kwargs={"token": token}))


def release_here() -> QrChallenge:
    """Release license on this console; return the release QR code."""
    challenge = release_registration()
    assert challenge.is_release
    return challenge


def new_server() -> None:
    """A new server with a new database: this installation's rows are gone."""
    QrChallenge.objects.all().delete()
    Installation.objects.all().delete()


def register_new_server(text: str) -> None:
    """Upload Container.lic on a new server, scan its QR code and type the code."""
    new_server()
    result = upload_license(text.encode(), "container")
    assert result.accepted, result.validation.codes
    assert submit_code(phone_code(result.challenge)).outcome == Outcome.ACCEPTED


# --- The console -------------------------------------------------------------------------


def test_release_needs_the_project_name_typed(registered, manager_client: Client):
    response = manager_client.post(RELEASE, {"project_name": "reports"})

    assert response.status_code == 400
    assert "Type the project name exactly as the license shows it: Reports" in response.text
    assert get_installation().state == "registered"
    assert not QrChallenge.objects.filter(state=ChallengeState.OPEN).exists()
    assert not AuditEvent.objects.filter(action=AuditAction.RELEASED).exists()
    assert manager_client.get(REPORTS).status_code == 200


def test_release_without_a_license_says_to_upload_one(frozen_clock, manager_client: Client):
    response = manager_client.post(RELEASE, {"project_name": "Reports"})

    assert response.status_code == 409
    assert "Upload a license first." in response.text
    assert not QrChallenge.objects.exists()


def test_release_ends_the_registration_and_shows_the_release_qr(registered, manager_client: Client):
    lic, _text = registered
    chain_before = get_installation().chain

    response = manager_client.post(RELEASE, {"project_name": " Reports "})

    assert response.status_code == 302 and response["Location"] == PAGE
    page = manager_client.get(PAGE).text
    assert "The registration on this server has ended." in page
    assert "Scan to release the license" in page
    assert 'id="qr-image"' in page and 'id="countdown">5:00<' in page
    challenge = QrChallenge.objects.get(state=ChallengeState.OPEN)
    assert f"/m/{challenge.token}" in page
    # No code to type for a release, and the release form is not offered twice.
    assert 'id="submit-code"' not in page and 'id="release-license"' not in page
    proto, _mac = decode_token(challenge.token)
    assert proto.purpose == Purpose.RELEASE
    # The token carries the chain value masked under K; the vendor, who derives K, reads it.
    assert proto.chain.hex() != chain_before
    assert vendor_chain_value(challenge.token).hex() == chain_before
    assert proto.license_id == lic.license_id
    row = get_installation()
    assert row.state == "unregistered" and row.registration_seal == ""
    # The gate closes here at once, whatever the phone does next.
    assert manager_client.get(REPORTS).status_code == 403
    event = AuditEvent.objects.get(action=AuditAction.RELEASED)
    assert event.license_id == lic.license_id and event.detail["tag"] == challenge.tag


def test_no_code_can_be_typed_for_a_release_qr(registered):
    release_here()

    assert submit_code("123456").outcome == Outcome.NO_CHALLENGE


def test_register_this_server_again_replaces_the_release_qr(registered, manager_client):
    release = release_here()

    response = manager_client.post(reverse("registration:challenge"))

    assert response.status_code == 302
    release.refresh_from_db()
    assert release.state == ChallengeState.SUPERSEDED
    challenge = QrChallenge.objects.get(state=ChallengeState.OPEN)
    assert challenge.purpose == Purpose.REGISTER
    assert submit_code(phone_code(challenge)).outcome == Outcome.ACCEPTED
    # The release was never scanned: the same binding goes on.
    assert Binding.objects.get().state == BindingState.ACTIVE


# --- The phone ---------------------------------------------------------------------------


def test_the_phone_releases_the_license(registered, client: Client):
    lic, _text = registered
    binding = Binding.objects.get()
    release = release_here()

    response = phone(client, release.token)

    assert response.status_code == 200
    assert RELEASED in response.text
    assert 'id="verification-code"' not in response.text
    binding.refresh_from_db()
    assert binding.state == BindingState.RELEASED
    assert binding.unbound_at == clock.now()
    assert binding.unbound_by is None
    assert binding.unbound_reason == "Released by the installation"
    event = VendorEvent.objects.get(action=VendorAction.RELEASED)
    assert event.license_id == lic.license_id
    assert event.installation_id == binding.installation_id
    assert event.detail["moves_in_365_days"] == 1


def test_a_reload_of_the_released_page_writes_nothing(registered, client: Client):
    release = release_here()
    phone(client, release.token)
    entries = VendorEvent.objects.count()

    again = phone(client, release.token)

    assert again.status_code == 200 and RELEASED in again.text
    assert VendorEvent.objects.count() == entries


def test_move_server_a_to_server_b_without_support(registered, client: Client):
    _lic, text = registered
    old = get_installation().installation_id
    phone(client, release_here().token)

    register_new_server(text)

    new = get_installation()
    assert new.state == "registered" and new.installation_id != old
    released, active = Binding.objects.order_by("pk")
    assert (released.installation_id, released.state) == (old, BindingState.RELEASED)
    assert (active.installation_id, active.state) == (new.installation_id, BindingState.ACTIVE)
    assert not VendorEvent.objects.filter(action=VendorAction.UNBIND).exists()


def test_a_released_server_registers_again_only_by_a_new_scan(registered, client: Client):
    phone(client, release_here().token)
    assert get_installation().state == "unregistered"

    challenge = refresh_challenge().challenge
    assert submit_code(phone_code(challenge)).outcome == Outcome.ACCEPTED

    assert get_installation().state == "registered"
    assert Binding.objects.filter(state=BindingState.ACTIVE).count() == 1
    assert Binding.objects.count() == 2  # a new binding, not the released one again


def test_once_the_new_server_registered_the_old_one_is_refused(registered, client: Client):
    lic, text = registered
    old = get_installation()
    phone(client, release_here().token)
    register_new_server(text)

    # The old server, still running with its own database, makes a QR code.
    token = crafted_token(
        lic.license_id, installation_id=old.installation_id, chain=bytes.fromhex(old.chain)
    )
    result = verify_for_phone(token, now=clock.now())

    assert [p.code for p in result.problems] == [ProblemCode.BOUND_ELSEWHERE]


# --- Only the live installation releases -------------------------------------------------


def test_a_release_made_from_the_license_file_alone_is_refused(registered, client: Client):
    lic, _text = registered
    binding = Binding.objects.get()
    # Someone with the file, and even the installation id (it travels in every QR code),
    # but not the chain value only the live installation holds.
    forged = crafted_token(
        lic.license_id,
        installation_id=binding.installation_id,
        purpose=Purpose.RELEASE,
        chain=secrets.token_bytes(CHAIN_BYTES),
    )
    elsewhere = crafted_token(lic.license_id, purpose=Purpose.RELEASE)

    refused = phone(client, forged)
    other = phone(client, elsewhere)
    no_file = phone(client, made_up_token(lic.license_id))

    assert refused.status_code == 403
    assert "This QR code does not come from the server the license is registered to." in (
        refused.text
    )
    assert other.status_code == 409
    assert "This license is registered to another server." in other.text
    assert no_file.status_code == 400
    assert RELEASED not in refused.text + other.text + no_file.text
    binding.refresh_from_db()
    assert binding.state == BindingState.ACTIVE
    # Not a copy: nothing is marked, and the live installation can still release.
    assert binding.copied_at is None
    assert phone(client, release_here().token).status_code == 200


def test_a_release_from_a_stale_copy_is_refused_as_a_copy(registered, frozen_clock, client: Client):
    original = ConsoleCopy.of_current("original")
    copy = ConsoleCopy.of_current("copy")
    assert original.scan_and_register().ok  # the original registers again...
    original.scan()  # ...and scans once more (after a restart, say)
    frozen_clock.advance(minutes=10)

    with copy.running():
        response = phone(client, release_here().token)

    assert response.status_code == 409
    assert "Installation Copied" in response.text
    assert "Another copy of this installation registered on 2026/06/01 12:00 UTC." in (
        response.text
    )
    binding = Binding.objects.get()
    assert binding.state == BindingState.ACTIVE
    assert binding.copied_at == clock.now()
    assert VendorEvent.objects.filter(action=VendorAction.COPY_DETECTED).count() == 1


def test_a_copy_that_the_vendor_cannot_tell_yet_cannot_release_either(registered, client: Client):
    """The original registered again but has not scanned since: the copy's value is still
    the vendor's tip. Only the holder of the last code shown may release, so it is refused."""
    original = ConsoleCopy.of_current("original")
    copy = ConsoleCopy.of_current("copy")
    assert original.scan_and_register().ok

    with copy.running():
        refused = phone(client, release_here().token)
    with original.running():
        released = phone(client, release_here().token)

    assert refused.status_code == 409
    assert "This server cannot release the license yet." in refused.text
    assert "Register this server once more (Refresh, scan, type the code)" in refused.text
    assert RELEASED in released.text


def test_a_scan_whose_code_was_never_typed_is_registered_once_more_first(
    registered, client: Client
):
    refresh_challenge()
    phone_code(QrChallenge.objects.get(state=ChallengeState.OPEN))  # shown, never typed

    refused = phone(client, release_here().token)
    assert "This server cannot release the license yet." in refused.text
    assert submit_code(phone_code(refresh_challenge().challenge)).outcome == Outcome.ACCEPTED

    assert RELEASED in phone(client, release_here().token).text


def test_a_server_bound_by_an_older_version_is_released_by_support_only(
    frozen_clock, issue, client: Client
):
    """A version-1 console bound it: nothing proves which server holds it, not even after
    the upgraded console (or someone with the file) presented a value since."""
    lic, text = issue(expires_at=date(2028, 12, 31))
    assert upload_license(text.encode(), "container").accepted
    row = get_installation()
    v1 = v1_token(lic.license_id, installation_id=row.installation_id)
    assert phone(client, v1).status_code == 200

    before = phone(client, release_here().token)
    assert submit_code(phone_code(refresh_challenge().challenge)).outcome == Outcome.ACCEPTED
    after = phone(client, release_here().token)

    for response in (before, after):
        assert response.status_code == 409
        assert "This license cannot be released from here." in response.text
        assert "Ask the vendor&#x27;s support staff to unbind it." in response.text
    binding = Binding.objects.get()
    assert binding.state == BindingState.ACTIVE and binding.chain_adopted_at == clock.now()


def test_nothing_to_release_when_the_license_is_free(frozen_clock, issue, client: Client):
    _lic, text = issue()
    assert upload_license(text.encode(), "container").accepted

    response = phone(client, release_here().token)

    assert response.status_code == 409
    assert "Nothing to release" in response.text
    assert "Register the new server with the same Container.lic." in response.text
    assert not Binding.objects.exists()


def test_a_release_qr_lasts_five_minutes(registered, frozen_clock, client: Client):
    release = release_here()
    frozen_clock.advance(minutes=5)

    expired = phone(client, release.token)

    assert expired.status_code == 410
    assert "This QR code has expired." in expired.text
    assert "Release the license again on the server&#x27;s Registration page" in expired.text
    assert "Click Refresh" not in expired.text
    assert Binding.objects.get().state == BindingState.ACTIVE


def test_a_release_qr_still_works_at_four_fifty_nine(registered, frozen_clock, client: Client):
    release = release_here()
    frozen_clock.advance(minutes=4, seconds=59)

    assert phone(client, release.token).status_code == 200
    assert Binding.objects.get().state == BindingState.RELEASED


# --- The yearly limit --------------------------------------------------------------------


def move_once(client: Client, text: str) -> None:
    """Release this server's license from the phone and register a new server with it."""
    assert RELEASED in phone(client, release_here().token).text
    register_new_server(text)


def test_at_most_two_self_service_moves_in_any_365_days(
    registered, frozen_clock, client: Client, settings
):
    assert settings.SELF_SERVICE_MOVES_PER_YEAR == 2
    _lic, text = registered
    move_once(client, text)
    frozen_clock.advance(days=30)
    move_once(client, text)
    first_move = START

    frozen_clock.set(first_move + timedelta(days=365) - timedelta(seconds=1))
    refused = phone(client, release_here().token)

    assert refused.status_code == 409
    assert "No self-service move left" in refused.text
    assert "This license has moved to another server 2 times in the last 365 days" in (refused.text)
    assert "Ask the vendor&#x27;s support staff to unbind it." in refused.text
    assert Binding.objects.get(state=BindingState.ACTIVE)
    event = VendorEvent.objects.filter(action=VendorAction.BINDING_REFUSED).last()
    assert event.detail == {"purpose": "release", "problems": ["moves_used_up"]}

    # 365 days after the first move, it no longer counts.
    frozen_clock.set(first_move + timedelta(days=365))
    assert RELEASED in phone(client, release_here().token).text


def test_support_staff_still_unbind_beyond_the_limit(
    registered, frozen_clock, client: Client, settings, staff
):
    settings.SELF_SERVICE_MOVES_PER_YEAR = 0
    _lic, text = registered
    assert phone(client, release_here().token).status_code == 409
    binding = Binding.objects.get(state=BindingState.ACTIVE)

    unbind(binding.pk, actor=staff, reason="Server gone", now=clock.now())
    register_new_server(text)

    assert get_installation().state == "registered"


def test_release_is_offered_once_registered(frozen_clock, issue, manager_client: Client):
    _lic, text = issue()
    assert upload_license(text.encode(), "container").accepted
    assert 'id="release-license"' not in manager_client.get(PAGE).text  # nothing to free yet

    assert submit_code(phone_code(QrChallenge.objects.get(state="open"))).outcome == (
        Outcome.ACCEPTED
    )

    page = manager_client.get(PAGE).text
    assert 'id="release-license"' in page
    assert "Type the project name (Reports) to confirm" in page


def test_the_vendors_admin_shows_the_release(registered, client: Client, admin_client: Client):
    lic, _text = registered
    phone(client, release_here().token)

    listing = admin_client.get(reverse("admin:authority_issuedlicense_changelist"))
    bindings = admin_client.get(reverse("admin:authority_binding_changelist"))
    audit = admin_client.get(reverse("admin:authority_auditevent_changelist"))

    assert '<td class="field-state">released</td>' in listing.text
    assert "Released by the installation" in bindings.text
    assert "Released by the installation" in audit.text
    binding = Binding.objects.get()
    page = admin_client.get(reverse("admin:authority_binding_change", args=[binding.pk]))
    assert reverse("admin:authority_binding_unbind", args=[binding.pk]) not in page.text


def test_the_release_pages_speak_chinese(registered, client: Client, manager_client: Client):
    manager_client.post(RELEASE, {"project_name": "Reports"})
    release = QrChallenge.objects.get(state=ChallengeState.OPEN)

    console = manager_client.get(PAGE, HTTP_ACCEPT_LANGUAGE="zh-hans")
    released = client.get(
        reverse("phone:verify", kwargs={"token": release.token}), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    again = client.get(
        reverse("phone:verify", kwargs={"token": release.token}), HTTP_ACCEPT_LANGUAGE="en"
    )

    assert "扫码释放许可证" in console.text and "本服务器上的注册已结束。" in console.text
    assert "已释放。请用同一个 Container.lic 注册新服务器。" in released.text
    assert RELEASED in again.text


# --- Tokens seen by others, copies support ruled on, renewals, races ---------------------


def test_an_old_qr_link_and_the_file_do_not_pass_for_the_live_installation(
    registered, client: Client
):
    """Tokens are links (phone histories, logs): the chain value in them is masked, so one
    seen by someone holding the file gives them no value the vendor knows."""
    lic, _text = registered
    binding = Binding.objects.get()
    seen = decode_token(refresh_challenge().challenge.token)[0]  # a link someone saw

    forged = {
        purpose: phone(
            client,
            crafted_token(
                lic.license_id,
                installation_id=binding.installation_id,
                purpose=purpose,
                chain=seen.chain,  # the token's chain field, as it travels
            ),
        )
        for purpose in (Purpose.REGISTER, Purpose.RELEASE)
    }

    assert forged[Purpose.REGISTER].status_code == 403
    assert forged[Purpose.RELEASE].status_code == 403
    for response in forged.values():
        assert "This QR code does not come from the server the license is registered to." in (
            response.text
        )
        assert 'id="verification-code"' not in response.text and RELEASED not in response.text
    binding.refresh_from_db()
    # Nothing marked, no successor the forger could know, and the live one goes on.
    assert binding.state == BindingState.ACTIVE and binding.copied_at is None
    assert len(binding.chain_successors) == 1  # only the live console's own code
    assert RELEASED in phone(client, release_here().token).text
    refused = VendorEvent.objects.filter(action=VendorAction.BINDING_REFUSED)
    assert sorted(e.detail["problems"][0] for e in refused) == [
        "not_this_installation",
        "release_not_live",
    ]


def test_a_release_from_the_copy_support_ruled_against_marks_nothing(
    registered, frozen_clock, client: Client, staff
):
    from registration.authority.support import resolve_copy

    original = ConsoleCopy.of_current("original")
    copy = ConsoleCopy.of_current("copy")
    assert original.scan_and_register().ok
    original.scan()
    frozen_clock.advance(minutes=10)
    _challenge, caught = copy.scan()
    assert [p.code for p in caught.problems] == [ProblemCode.INSTALLATION_COPIED]
    binding = Binding.objects.get()
    resolve_copy(
        binding.pk, keep_tip=True, actor=staff, reason="Keep the original", now=clock.now()
    )
    frozen_clock.advance(minutes=1)

    with copy.running():
        refused = phone(client, release_here().token)
    _challenge, kept = original.scan()

    assert refused.status_code == 409 and "Installation Copied" in refused.text
    binding.refresh_from_db()
    assert binding.copied_at is None and binding.state == BindingState.ACTIVE
    assert kept.ok  # the kept copy is not locked out by the other's attempt
    assert VendorEvent.objects.filter(action=VendorAction.COPY_DETECTED).count() == 1


def _renewal_of(lic) -> str:
    """A renewal of lic, a year later than the one the registered fixture installs."""
    return renew(lic, expires="2029-01-31")


def test_a_renewal_does_not_start_the_count_of_moves_again(
    registered, frozen_clock, client: Client, settings, manager_client: Client
):
    settings.SELF_SERVICE_MOVES_PER_YEAR = 1
    lic, text = registered
    move_once(client, text)
    renewal = _renewal_of(lic)  # the binding moves to the renewal
    frozen_clock.advance(minutes=1)
    from registration.flows.upload import UploadOutcome

    assert upload_license(renewal.encode(), "container").outcome == UploadOutcome.RENEWED

    refused = phone(client, release_here().token)

    assert refused.status_code == 409
    assert "No self-service move left" in refused.text
    assert "moved to another server 1 time in the last 365 days" in refused.text


def test_a_release_with_the_renewed_file_still_installed_says_to_upload_the_renewal(
    registered, frozen_clock, client: Client
):
    lic, _text = registered
    _renewal_of(lic)  # issued; this server has not uploaded it yet

    refused = phone(client, release_here().token)

    assert refused.status_code == 409
    assert "This license was renewed." in refused.text
    assert "Upload the renewal the vendor sent on this server, then release" in refused.text
    assert RELEASED not in refused.text


def test_a_release_that_cannot_make_its_qr_changes_nothing(
    registered, manager_client: Client, settings
):
    settings.AUTHORITY_PUBLIC_KEYS = {}  # no vendor key pinned: no QR code can be made
    before = get_installation()

    response = manager_client.post(RELEASE, {"project_name": "Reports"})

    assert response.status_code == 409
    assert "No verification service key is configured on this server" in response.text
    row = get_installation()
    assert (row.state, row.registration_seal) == (before.state, before.registration_seal)
    assert not AuditEvent.objects.filter(action=AuditAction.RELEASED).exists()
    assert not QrChallenge.objects.filter(purpose=Purpose.RELEASE).exists()


def test_moves_made_under_a_renewal_count_after_it_is_revoked(
    registered, frozen_clock, client: Client, staff
):
    """Revoking a renewal gives its binding back to the license it renewed, and the moves
    made under the renewal go back with it."""
    from registration.authority.models import IssuedLicense
    from registration.authority.release import moves_in_window
    from registration.authority.support import revoke
    from registration.flows.upload import UploadOutcome

    lic, _text = registered
    renewal = _renewal_of(lic)
    frozen_clock.advance(minutes=1)
    assert upload_license(renewal.encode(), "container").outcome == UploadOutcome.RENEWED
    move_once(client, renewal)
    renewed = IssuedLicense.objects.get(renews__isnull=False)
    original = IssuedLicense.objects.get(license_id=lic.license_id)
    assert moves_in_window(original, clock.now()) == 1

    revoke(renewed.pk, actor=staff, reason="Issued by mistake", now=clock.now())

    assert Binding.objects.get(state=BindingState.ACTIVE).license == original
    assert moves_in_window(original, clock.now()) == 1
