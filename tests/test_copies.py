"""Copies of an installation are caught by the registration chain (docs/protocol.md)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from registration.authority.binding import ProblemCode, verify_for_phone
from registration.authority.models import AuditAction, AuditEvent, Binding
from registration.flows.challenge import refresh_challenge
from registration.flows.code import Outcome, submit_code
from registration.flows.upload import upload_license
from registration.models import Installation
from tests.copy_steps import ConsoleCopy
from tests.phone_steps import phone_code, v1_token

pytestmark = pytest.mark.django_db

COPIED = ProblemCode.INSTALLATION_COPIED


def _codes(result) -> list[str]:
    return [str(p.code) for p in result.problems]


def refresh_challenge_of(console: ConsoleCopy):
    """A QR code this copy shows and nobody scans (an old tab, another node's screen)."""
    with console.running():
        return refresh_challenge().challenge


@pytest.fixture
def registered(issue, frozen_clock) -> str:
    """An installation registered once (then copied by each test as it needs)."""
    _lic, text = issue(max_nodes=2)
    result = upload_license(text.encode(), "container")
    assert result.accepted
    assert submit_code(phone_code(result.challenge)).outcome == Outcome.ACCEPTED
    return text


def test_a_registration_moves_the_chain_on_both_sides(registered):
    binding = Binding.objects.get()
    console = Installation.objects.get().chain

    assert binding.chain_tip and console != binding.chain_tip
    assert [entry[0] for entry in binding.chain_successors] == [console]


def test_a_b_a_b_the_copy_is_caught_at_its_first_scan_after_the_other_registered_again(
    registered, frozen_clock
):
    a, b = ConsoleCopy.of_current("A"), ConsoleCopy.of_current("B")
    frozen_clock.advance(minutes=10)
    assert a.scan_and_register().ok
    frozen_clock.advance(minutes=10)
    # B has not been overtaken yet: its value is still the tip, as after a Refresh.
    assert b.scan_and_register().ok
    frozen_clock.advance(minutes=10)
    assert a.scan_and_register().ok  # A comes back first: its successor wins
    frozen_clock.advance(minutes=10)

    caught = b.scan_and_register()

    assert _codes(caught) == [COPIED] and caught.status == 409
    assert "Another copy of this installation registered on 2026/06/01 12:10 UTC" in str(
        caught.problems[0].details[0]
    )
    binding = Binding.objects.get()
    assert binding.copied_at is not None and binding.copy_chain == b.chain
    # Marked copied: every copy is refused until support chooses.
    assert _codes(a.scan_and_register()) == [COPIED]
    assert AuditEvent.objects.filter(action=AuditAction.COPY_DETECTED).count() == 1


def test_a_a_b_an_older_copy_is_caught_at_its_first_scan(registered, frozen_clock):
    a, b = ConsoleCopy.of_current("A"), ConsoleCopy.of_current("B")
    assert a.scan_and_register().ok
    assert a.scan_and_register().ok
    frozen_clock.advance(minutes=5)  # CHAIN_STALE_GRACE_SECONDS after A's scan

    assert _codes(b.scan_and_register()) == [COPIED]


def test_b_only_a_copy_that_runs_alone_goes_on(registered):
    b = ConsoleCopy.of_current("B")
    for _ in range(3):
        assert b.scan_and_register().ok
    assert Binding.objects.get().copied_at is None


def test_a_lone_restore_of_an_old_backup_is_caught_and_support_keeps_it(
    registered, frozen_clock, admin_client
):
    backup = ConsoleCopy.of_current("backup")
    live = ConsoleCopy.of_current("live")
    assert live.scan_and_register().ok
    assert live.scan_and_register().ok
    frozen_clock.advance(hours=2)
    # The live server is gone; the backup is restored in its place.
    assert _codes(backup.scan_and_register()) == [COPIED]

    binding = Binding.objects.get()
    assert binding.copy_chain == backup.chain
    url = reverse("admin:authority_binding_resolve_copy", args=[binding.pk])
    response = admin_client.post(url, {"keep": "copy", "reason": "Restored from backup"})
    assert response.status_code == 302

    # The kept copy's value was a past one: its own superseded QR codes stay out of date,
    # not copies, once it has moved on from that value.
    old_tab = refresh_challenge_of(backup)
    assert backup.scan_and_register().ok
    frozen_clock.advance(minutes=1)
    assert backup.scan_and_register().ok
    late = verify_for_phone(old_tab.token, now=frozen_clock.now())
    assert _codes(late) == ["challenge_stale"]
    assert Binding.objects.get().copied_at is None
    assert _codes(live.scan_and_register()) == [COPIED]  # the other copy, refused from now on
    entry = AuditEvent.objects.get(action=AuditAction.COPY_RESOLVED)
    assert entry.detail["reason"] == "Restored from backup"
    assert (entry.detail["kept_chain"], entry.detail["refused_chain"]) == (
        binding.copy_chain,
        binding.chain_tip,
    )


# --- What is not a copy ---------------------------------------------------------------


def test_a_scan_whose_code_was_never_typed_is_not_a_copy(registered):
    console = ConsoleCopy.of_current("A")
    for _ in range(3):
        _challenge, result = console.scan()
        assert result.ok
    assert console.scan_and_register().ok
    assert console.scan_and_register().ok
    assert Binding.objects.get().copied_at is None


def test_two_qr_codes_from_two_nodes_of_one_cluster_are_not_a_copy(registered, frozen_clock):
    # Node 1 and node 2 each make a QR code from the one database (the second closes the
    # first on the console, not on the phone); both are scanned, node 2's code is typed.
    first = refresh_challenge().challenge
    second = refresh_challenge().challenge
    one = verify_for_phone(first.token, now=frozen_clock.now())
    two = verify_for_phone(second.token, now=frozen_clock.now())
    assert one.ok and two.ok

    assert submit_code(two.code).outcome == Outcome.ACCEPTED
    assert ConsoleCopy.of_current("cluster").scan_and_register().ok
    assert Binding.objects.get().copied_at is None


def test_a_reload_of_the_phone_page_is_not_a_copy(registered, client: Client):
    console = ConsoleCopy.of_current("A")
    challenge, first = console.scan()
    again = client.get(reverse("phone:verify", args=[challenge.token]))
    assert again.status_code == 200 and first.code in again.content.decode()
    assert console.scan_and_register().ok


# --- Version 1 consoles ---------------------------------------------------------------


def test_a_version_1_token_gets_a_code_and_says_no_copy_check_was_possible(
    issue, frozen_clock, client: Client
):
    _lic, text = issue(max_nodes=2)
    assert upload_license(text.encode(), "container").accepted
    row = Installation.objects.select_related("license").get()
    token = v1_token(row.license.license_id, installation_id=row.installation_id)

    page = client.get(reverse("phone:verify", args=[token]))

    assert page.status_code == 200
    assert "No copy check was possible" in page.content.decode()
    entry = AuditEvent.objects.filter(action=AuditAction.CODE_SHOWN).latest("id")
    assert entry.detail["copy_check"] == "not_possible"


def test_a_version_1_token_is_refused_once_a_version_2_console_registered(
    registered, client: Client
):
    """A console does not downgrade: such a token is a node not upgraded yet, or one made
    from the license file, and nothing checks it against the chain."""
    row = Installation.objects.select_related("license").get()
    token = v1_token(row.license.license_id, installation_id=row.installation_id)

    page = client.get(reverse("phone:verify", args=[token]))

    assert page.status_code == 409
    assert "This QR code was made by an older version of the product." in page.text
    assert 'id="verification-code"' not in page.text
    assert Binding.objects.get().copied_at is None


# --- Support staff --------------------------------------------------------------------


@pytest.fixture
def copied(registered, frozen_clock) -> Binding:
    a, b = ConsoleCopy.of_current("A"), ConsoleCopy.of_current("B")
    assert a.scan_and_register().ok and a.scan_and_register().ok
    frozen_clock.advance(minutes=10)
    assert _codes(b.scan_and_register()) == [COPIED]
    return Binding.objects.get()


def _support_client(django_user_model) -> Client:
    user = django_user_model.objects.create_user("sup", password="pw-sup-1", is_staff=True)
    user.groups.add(Group.objects.get(name="Support staff"))
    client = Client()
    client.force_login(user)
    return client


def test_support_staff_find_copied_bindings_with_both_tips(copied, django_user_model):
    client = _support_client(django_user_model)
    listing = client.get(reverse("admin:authority_binding_changelist"), {"copied": "yes"})
    assert listing.context["cl"].result_count == 1

    page = client.get(reverse("admin:authority_binding_resolve_copy", args=[copied.pk])).text
    assert copied.chain_tip[:8] in page and copied.copy_chain[:8] in page


def test_resolving_needs_a_choice_a_reason_the_permission_and_a_post(
    copied, django_user_model, client: Client, staff
):
    url = reverse("admin:authority_binding_resolve_copy", args=[copied.pk])
    support = _support_client(django_user_model)
    assert support.post(url, {"keep": "tip"}).status_code == 400  # no reason
    assert support.post(url, {"reason": "why"}).status_code == 400  # no choice
    assert support.post(url, {"keep": "neither", "reason": "why"}).status_code == 400
    client.force_login(staff)
    assert client.post(url, {"keep": "tip", "reason": "why"}).status_code in {302, 403}
    assert Binding.objects.get().copied_at is not None
    csrf = Client(enforce_csrf_checks=True)
    csrf.force_login(django_user_model.objects.get(username="sup"))
    assert csrf.post(url, {"keep": "tip", "reason": "why"}).status_code == 403
    assert Binding.objects.get().copied_at is not None

    assert support.post(url, {"keep": "tip", "reason": "Customer chose A"}).status_code == 302
    assert Binding.objects.get().copied_at is None


def test_a_value_the_installation_never_had_is_refused_and_marks_nothing(registered):
    """A token made from the license file and the installation id (both seen by many):
    not a copy, so it cannot lock the live installation out."""
    import secrets

    from registration.authority.models import IssuedLicense
    from tests.phone_steps import crafted_token

    binding = Binding.objects.get()
    lic = IssuedLicense.objects.get()
    forged = crafted_token(
        lic.license_id, installation_id=binding.installation_id, chain=secrets.token_bytes(8)
    )

    refused = verify_for_phone(forged, now=binding.first_bound)

    assert _codes(refused) == ["not_this_installation"] and refused.status == 403
    assert not refused.code
    binding.refresh_from_db()
    assert binding.copied_at is None
    assert not AuditEvent.objects.filter(action=AuditAction.COPY_DETECTED).exists()
    assert verify_for_phone(refresh_challenge().challenge.token, now=binding.first_bound).ok


def test_a_link_opened_again_after_the_installation_moved_on_is_not_a_copy(
    registered, frozen_clock
):
    """The admin's phone reloads an old tab (or someone opens a link from a chat) within
    its five minutes, after a newer QR code was scanned: refused, nothing marked."""
    from registration import clock

    first = refresh_challenge().challenge
    assert verify_for_phone(first.token, now=clock.now()).ok
    frozen_clock.advance(seconds=10)
    newer = refresh_challenge().challenge  # carries the value the first one had
    code = verify_for_phone(newer.token, now=clock.now()).code
    frozen_clock.advance(seconds=10)  # the admin types the code
    assert submit_code(code).outcome == Outcome.ACCEPTED
    frozen_clock.advance(seconds=10)
    assert verify_for_phone(refresh_challenge().challenge.token, now=clock.now()).ok  # moved on
    frozen_clock.advance(minutes=4, seconds=29)  # still within the newer QR code's 5 minutes

    again = verify_for_phone(newer.token, now=clock.now())

    assert _codes(again) == ["challenge_stale"] and again.status == 409
    assert str(again.problems[0].title) == "This QR code is out of date."
    assert Binding.objects.get().copied_at is None
    assert not AuditEvent.objects.filter(action=AuditAction.COPY_DETECTED).exists()


def test_another_nodes_qr_code_never_scanned_is_not_a_copy_after_a_registration(
    registered, frozen_clock
):
    """Node 1 still shows its QR code when node 2 clicks Refresh; node 2's is scanned, the
    code typed, the server scans again; then someone scans node 1's screen."""
    from registration import clock

    on_node_1 = refresh_challenge().challenge  # never scanned
    frozen_clock.advance(seconds=20)
    on_node_2 = refresh_challenge().challenge
    assert submit_code(verify_for_phone(on_node_2.token, now=clock.now()).code).outcome == (
        Outcome.ACCEPTED
    )
    frozen_clock.advance(seconds=20)
    assert verify_for_phone(refresh_challenge().challenge.token, now=clock.now()).ok
    frozen_clock.advance(seconds=20)

    late = verify_for_phone(on_node_1.token, now=clock.now())

    assert _codes(late) == ["challenge_stale"]
    assert Binding.objects.get().copied_at is None


def test_a_copy_is_refused_within_the_grace_and_caught_once_it_has_passed(
    registered, frozen_clock, settings
):
    """Up to CHAIN_STALE_GRACE_SECONDS after the other copy's scan a copy's token is out of
    date (no code either); at the grace's end it is caught."""
    assert settings.CHAIN_STALE_GRACE_SECONDS == 300
    a, b = ConsoleCopy.of_current("A"), ConsoleCopy.of_current("B")
    assert a.scan_and_register().ok
    assert a.scan_and_register().ok

    frozen_clock.advance(minutes=4, seconds=59)
    early = b.scan_and_register()
    frozen_clock.advance(seconds=1)
    caught = b.scan_and_register()

    assert _codes(early) == ["challenge_stale"] and not early.code
    assert _codes(caught) == [COPIED]


def test_with_no_grace_a_copy_is_caught_the_second_after_the_other_scan(
    registered, frozen_clock, settings
):
    settings.CHAIN_STALE_GRACE_SECONDS = 0
    a, b = ConsoleCopy.of_current("A"), ConsoleCopy.of_current("B")
    assert a.scan_and_register().ok
    assert a.scan_and_register().ok
    frozen_clock.advance(seconds=1)

    assert _codes(b.scan_and_register()) == [COPIED]


def test_a_version_1_token_gets_no_code_while_the_binding_is_marked_copied(copied):
    row = Installation.objects.select_related("license").get()
    token = v1_token(row.license.license_id, installation_id=row.installation_id)

    refused = verify_for_phone(token, now=copied.copied_at)

    assert _codes(refused) == [COPIED] and not refused.code


def _bound_by_version_1(issue) -> tuple[object, Binding]:
    _lic, text = issue(max_nodes=2)
    assert upload_license(text.encode(), "container").accepted
    row = Installation.objects.select_related("license").get()
    token = v1_token(row.license.license_id, installation_id=row.installation_id)
    from registration import clock

    assert verify_for_phone(token, now=clock.now()).ok
    return row, Binding.objects.get()


def test_on_a_binding_a_version_1_console_made_a_second_claimant_goes_to_support(
    issue, frozen_clock, django_user_model
):
    """The first version-2 value is adopted (nothing proves whose it is); a value the
    binding never had is then a conflict support staff decide, not a silent refusal."""
    import secrets

    from registration import clock
    from tests.phone_steps import crafted_token

    row, binding = _bound_by_version_1(issue)
    # Someone with the file, and the installation id from a link, scans first...
    first = crafted_token(
        row.license.license_id,
        installation_id=row.installation_id,
        chain=secrets.token_bytes(8),
    )
    assert verify_for_phone(first, now=clock.now()).ok
    binding.refresh_from_db()
    assert binding.chain_adopted_at == clock.now()

    # ...then the upgraded console itself: refused as a copy, and support can keep it.
    frozen_clock.advance(days=30)
    live = verify_for_phone(refresh_challenge().challenge.token, now=clock.now())

    assert _codes(live) == [COPIED]
    # The other claimant "registered" when its value was adopted, not when v1 bound it.
    assert "registered on 2026/06/01 12:00 UTC" in str(live.problems[0].details[0])
    binding.refresh_from_db()
    assert binding.copied_at is not None
    url = reverse("admin:authority_binding_resolve_copy", args=[binding.pk])
    support = _support_client(django_user_model)
    assert support.post(url, {"keep": "copy", "reason": "The customer's server"}).status_code == 302
    assert verify_for_phone(refresh_challenge().challenge.token, now=clock.now()).ok
    # Support vouched for it: another made-up value is now refused and marks nothing.
    again = crafted_token(
        row.license.license_id,
        installation_id=row.installation_id,
        chain=secrets.token_bytes(8),
    )
    assert _codes(verify_for_phone(again, now=clock.now())) == ["not_this_installation"]
    binding.refresh_from_db()
    assert binding.copied_at is None and binding.chain_adopted_at is None


def test_the_migration_dates_past_values_written_before_they_kept_their_overtaking(
    registered, frozen_clock
):
    """Entries of two fields (value, shown at) get the migration's time as their third,
    so a superseded QR code made before the upgrade is out of date, not a copy."""
    import importlib

    from django.apps import apps
    from django.utils import timezone

    migration = importlib.import_module(
        "registration.authority.migrations.0010_chain_past_overtaken_at"
    )
    binding = Binding.objects.get()
    kept = ["cccccccccccccccc", None, "2026-05-01T00:00:00+00:00"]
    binding.chain_past = [
        ["aaaaaaaaaaaaaaaa", None],
        ["bbbbbbbbbbbbbbbb", "2026-05-01T00:00:00"],
        kept,
    ]
    binding.save()
    before = timezone.now()

    migration.add_overtaken_at(apps, None)

    binding.refresh_from_db()
    first, second, third = binding.chain_past
    assert first[:2] == ["aaaaaaaaaaaaaaaa", None] and second[0] == "bbbbbbbbbbbbbbbb"
    from datetime import datetime

    assert datetime.fromisoformat(first[2]) >= before and first[2] == second[2]
    assert third == kept
