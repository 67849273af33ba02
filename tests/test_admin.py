"""Support staff in the Django admin: issued licenses, bindings, unbind, revoke, audit log."""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from registration.authority.models import (
    AuditAction,
    AuditEvent,
    Binding,
    BindingState,
    IssuedLicense,
)
from registration.flows.upload import upload_license
from registration.models import Installation, QrChallenge
from registration.protocol.causes import AUTH_METHOD_CONTAINER

pytestmark = pytest.mark.django_db

SUPPORT_GROUP = "Support staff"
MAXIMUM_REACHED = "The maximum license number has been reached."


# --- Fixtures -----------------------------------------------------------------------


@pytest.fixture
def support(django_user_model):
    """A staff user in the Support staff group made by the data migration."""
    user = django_user_model.objects.create_user("support", password="pw-support-1", is_staff=True)
    user.groups.add(Group.objects.get(name=SUPPORT_GROUP))
    return user


@pytest.fixture
def support_client(support) -> Client:
    client = Client()
    client.force_login(support)
    return client


def upload(text: str) -> str:
    """Upload a license on this installation and return the QR token it issued."""
    result = upload_license(text.encode("ascii"), AUTH_METHOD_CONTAINER)
    assert result.accepted, result.validation.codes
    return result.challenge.token


def phone_url(token: str) -> str:
    return reverse("phone:verify", args=[token])


@pytest.fixture
def bound(issue, frozen_clock):
    """A license registered to this installation through the real phone page."""
    lic, text = issue(company="Bound Co", project_name="Bound Reports")
    token = upload(text)
    response = Client().get(phone_url(token))
    assert response.status_code == 200
    binding = Binding.objects.get(license__license_id=lic.license_id)
    return lic, text, token, binding


def unbind_url(binding: Binding) -> str:
    return reverse("admin:authority_binding_unbind", args=[binding.pk])


def revoke_url(issued: IssuedLicense) -> str:
    return reverse("admin:authority_issuedlicense_revoke", args=[issued.pk])


def audit_entries(action: AuditAction):
    return AuditEvent.objects.filter(action=action)


# --- The group ------------------------------------------------------------------------


def test_support_group_has_exactly_the_intended_permissions():
    group = Group.objects.get(name=SUPPORT_GROUP)
    granted = {
        f"{p.content_type.app_label}.{p.codename}"
        for p in group.permissions.select_related("content_type")
    }
    assert granted == {
        "authority.view_issuedlicense",
        "authority.revoke_issuedlicense",
        "authority.view_binding",
        "authority.unbind_binding",
        "authority.view_auditevent",
    }


# --- Listing and searching ------------------------------------------------------------


def test_support_staff_list_and_search_issued_licenses(support_client, issue):
    acme, _ = issue(company="Acme Ltd", project_name="Reports")
    other, _ = issue(company="Globex Corp", project_name="Dashboards")
    url = reverse("admin:authority_issuedlicense_changelist")

    listing = support_client.get(url)
    assert listing.status_code == 200
    assert str(acme.license_id) in listing.text
    assert str(other.license_id) in listing.text

    by_company = support_client.get(url, {"q": "globex"})
    assert by_company.status_code == 200
    assert str(other.license_id) in by_company.text
    assert str(acme.license_id) not in by_company.text

    by_id = support_client.get(url, {"q": str(acme.license_id)})
    assert str(acme.license_id) in by_id.text
    assert str(other.license_id) not in by_id.text


def test_issued_licenses_are_read_only_for_support_staff(support_client, issue):
    lic, _ = issue()
    issued = IssuedLicense.objects.get(license_id=lic.license_id)
    change_url = reverse("admin:authority_issuedlicense_change", args=[issued.pk])

    assert support_client.get(reverse("admin:authority_issuedlicense_add")).status_code == 403
    assert support_client.post(change_url, {"company": "Evil"}).status_code == 403
    delete_url = reverse("admin:authority_issuedlicense_delete", args=[issued.pk])
    assert support_client.post(delete_url, {"post": "yes"}).status_code == 403
    issued.refresh_from_db()
    assert issued.company == "Acme Ltd"
    # The view page offers Revoke instead.
    assert revoke_url(issued) in support_client.get(change_url).text


def test_support_staff_list_and_search_bindings(support_client, bound, issue):
    lic, _, _, binding = bound
    url = reverse("admin:authority_binding_changelist")

    listing = support_client.get(url)
    assert listing.status_code == 200
    for value in (str(lic.license_id), "Bound Co", "Bound Reports", str(binding.installation_id)):
        assert value in listing.text
    assert unbind_url(binding) in listing.text

    for query in ("bound co", str(lic.license_id), str(binding.installation_id)):
        found = support_client.get(url, {"q": query})
        assert str(lic.license_id) in found.text, query
    missing = support_client.get(url, {"q": str(uuid.uuid4())})
    assert str(lic.license_id) not in missing.text


# --- Unbind ---------------------------------------------------------------------------


def test_unbind_confirmation_page_changes_nothing(support_client, bound):
    binding = bound[3]
    before = AuditEvent.objects.count()

    response = support_client.get(unbind_url(binding))

    assert response.status_code == 200
    assert 'name="reason"' in response.text
    assert "csrfmiddlewaretoken" in response.text
    binding.refresh_from_db()
    assert binding.state == BindingState.ACTIVE
    assert AuditEvent.objects.count() == before


def test_unbind_with_reason_unbinds_and_writes_one_audit_entry(support_client, support, bound):
    lic, _, _, binding = bound

    response = support_client.post(unbind_url(binding), {"reason": "  Customer moved servers  "})

    assert response.status_code == 302
    assert response.url == reverse("admin:authority_binding_changelist")
    binding.refresh_from_db()
    assert binding.state == BindingState.UNBOUND
    assert binding.unbound_by == support
    assert binding.unbound_reason == "Customer moved servers"
    entry = audit_entries(AuditAction.UNBIND).get()
    assert entry.actor == support
    assert entry.actor_label == "support"
    assert entry.license_id == lic.license_id
    assert entry.installation_id == binding.installation_id
    assert entry.detail == {"reason": "Customer moved servers"}


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
def test_unbind_without_a_usable_reason_changes_nothing(support_client, bound, reason):
    binding = bound[3]

    response = support_client.post(unbind_url(binding), {"reason": reason})

    assert response.status_code == 400
    assert 'class="errorlist' in response.text
    binding.refresh_from_db()
    assert binding.state == BindingState.ACTIVE
    assert not audit_entries(AuditAction.UNBIND).exists()


def test_unbind_at_the_longest_reason_is_accepted(support_client, bound):
    binding = bound[3]

    response = support_client.post(unbind_url(binding), {"reason": "x" * 500})

    assert response.status_code == 302
    binding.refresh_from_db()
    assert binding.unbound_reason == "x" * 500


def test_unbinding_twice_writes_no_second_entry(support_client, bound):
    binding = bound[3]
    support_client.post(unbind_url(binding), {"reason": "moved"})

    again = support_client.post(unbind_url(binding), {"reason": "moved again"})

    assert again.status_code == 302
    assert audit_entries(AuditAction.UNBIND).count() == 1
    binding.refresh_from_db()
    assert binding.unbound_reason == "moved"


def test_unbind_of_unknown_binding_is_404(support_client):
    for object_id in ("999999", "not-a-number"):
        url = reverse("admin:authority_binding_unbind", args=[object_id])
        assert support_client.get(url).status_code == 404


def test_unbind_needs_post_or_get(support_client, bound):
    assert support_client.put(unbind_url(bound[3])).status_code == 405


def test_unbind_post_enforces_csrf(support, bound):
    binding = bound[3]
    client = Client(enforce_csrf_checks=True)
    client.force_login(support)

    refused = client.post(unbind_url(binding), {"reason": "moved"})

    assert refused.status_code == 403
    binding.refresh_from_db()
    assert binding.state == BindingState.ACTIVE
    # The same POST with the page's token goes through: the 403 was CSRF's.
    page = client.get(unbind_url(binding))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    accepted = client.post(unbind_url(binding), {"reason": "moved", "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302
    binding.refresh_from_db()
    assert binding.state == BindingState.UNBOUND


def test_moving_servers_needs_an_unbind(support_client, bound, frozen_clock):
    """A second installation is refused until support staff unbind, then it registers."""
    lic, text, _, binding = bound
    # A new server with a new database: a new installation with a new installation_id.
    Installation.objects.all().delete()
    new_token = upload(text)
    phone = Client()

    refused = phone.get(phone_url(new_token))
    assert refused.status_code == 409
    assert MAXIMUM_REACHED in refused.text

    support_client.post(unbind_url(binding), {"reason": "customer moved servers"})

    frozen_clock.advance(seconds=1)
    accepted = phone.get(phone_url(new_token))
    assert accepted.status_code == 200
    assert 'id="verification-code"' in accepted.text
    new_binding = Binding.objects.get(license__license_id=lic.license_id, state="active")
    assert new_binding.installation_id == Installation.objects.get().installation_id
    assert new_binding.installation_id != binding.installation_id


# --- Revoke ---------------------------------------------------------------------------


def test_revoke_confirmation_page_changes_nothing(support_client, issue):
    lic, _ = issue()
    issued = IssuedLicense.objects.get(license_id=lic.license_id)

    response = support_client.get(revoke_url(issued))

    assert response.status_code == 200
    assert 'name="reason"' in response.text
    issued.refresh_from_db()
    assert issued.revoked_at is None


def test_revoke_without_reason_changes_nothing(support_client, issue):
    lic, _ = issue()
    issued = IssuedLicense.objects.get(license_id=lic.license_id)

    response = support_client.post(revoke_url(issued), {"reason": " "})

    assert response.status_code == 400
    issued.refresh_from_db()
    assert issued.revoked_at is None
    assert not audit_entries(AuditAction.REVOKE).exists()


def test_revoke_makes_the_phone_page_refuse_the_license(
    support_client, support, issue, frozen_clock
):
    lic, text = issue()
    token = upload(text)
    phone = Client()
    assert phone.get(phone_url(token)).status_code == 200
    issued = IssuedLicense.objects.get(license_id=lic.license_id)

    frozen_clock.advance(seconds=30)
    response = support_client.post(revoke_url(issued), {"reason": "Contract cancelled"})

    assert response.status_code == 302
    issued.refresh_from_db()
    assert issued.revoked_at == frozen_clock.now()
    assert issued.revoked_reason == "Contract cancelled"
    entry = audit_entries(AuditAction.REVOKE).get()
    assert (entry.actor, entry.license_id) == (support, lic.license_id)
    assert entry.detail == {"reason": "Contract cancelled"}
    refused = phone.get(phone_url(token))
    assert refused.status_code == 403
    assert "This license has been revoked." in refused.text
    assert 'id="verification-code"' not in refused.text


# --- Who may do what ------------------------------------------------------------------


def test_staff_without_the_group_gets_403(staff_client, bound):
    lic, _, _, binding = bound
    issued = binding.license
    for url in (unbind_url(binding), revoke_url(issued)):
        assert staff_client.get(url).status_code == 403, url
        assert staff_client.post(url, {"reason": "because"}).status_code == 403, url
    for name in ("binding", "issuedlicense", "auditevent"):
        changelist = reverse(f"admin:authority_{name}_changelist")
        assert staff_client.get(changelist).status_code == 403, name
    binding.refresh_from_db()
    issued.refresh_from_db()
    assert binding.state == BindingState.ACTIVE
    assert issued.revoked_at is None


def test_anonymous_is_sent_to_login(client, bound):
    binding = bound[3]
    for url in (unbind_url(binding), revoke_url(binding.license)):
        for response in (client.get(url), client.post(url, {"reason": "x"})):
            assert response.status_code == 302
            assert response.url.startswith(reverse("admin:login"))
    binding.refresh_from_db()
    assert binding.state == BindingState.ACTIVE


def test_support_staff_cannot_see_customer_side_rows(support_client, bound):
    for name in ("installation", "installedlicense", "qrchallenge", "nodelease"):
        url = reverse(f"admin:registration_{name}_changelist")
        assert support_client.get(url).status_code == 403, name


def test_customer_side_is_read_only_for_superusers(admin_client, bound):
    installation = Installation.objects.get()
    change_url = reverse("admin:registration_installation_change", args=[installation.pk])

    assert admin_client.get(change_url).status_code == 200
    assert admin_client.post(change_url, {"failed_attempts": "0"}).status_code == 403
    delete_url = reverse("admin:registration_installation_delete", args=[installation.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert admin_client.get(reverse("admin:registration_qrchallenge_add")).status_code == 403


def test_challenge_verifier_and_token_are_never_shown(admin_client, bound):
    challenge = QrChallenge.objects.get()
    url = reverse("admin:registration_qrchallenge_change", args=[challenge.pk])

    response = admin_client.get(url)

    assert response.status_code == 200
    assert challenge.tag in response.text
    assert challenge.token not in response.text
    assert challenge.code_verifier.split("$")[-1] not in response.text
    assert "field-code_verifier" not in response.text


# --- The audit log --------------------------------------------------------------------


def test_audit_log_is_listed_and_filtered_for_support_staff(support_client, bound):
    binding = bound[3]
    url = reverse("admin:authority_auditevent_changelist")

    shown = support_client.get(url, {"action__exact": AuditAction.CODE_SHOWN})
    assert shown.status_code == 200
    assert str(binding.installation_id) in shown.text
    by_installation = support_client.get(url, {"q": str(binding.installation_id)})
    assert by_installation.status_code == 200
    assert "Verification code shown" in by_installation.text


def test_audit_log_cannot_be_changed_or_deleted_even_by_a_superuser(admin_client, bound):
    entry = AuditEvent.objects.filter(action=AuditAction.CODE_SHOWN).get()
    change_url = reverse("admin:authority_auditevent_change", args=[entry.pk])
    delete_url = reverse("admin:authority_auditevent_delete", args=[entry.pk])
    changelist = reverse("admin:authority_auditevent_changelist")

    assert admin_client.get(change_url).status_code == 200
    assert admin_client.post(change_url, {"action": "unbind"}).status_code == 403
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert admin_client.get(reverse("admin:authority_auditevent_add")).status_code == 403
    bulk = admin_client.post(
        changelist, {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    entry.refresh_from_db()
    assert entry.action == AuditAction.CODE_SHOWN
    assert AuditEvent.objects.filter(pk=entry.pk).exists()
