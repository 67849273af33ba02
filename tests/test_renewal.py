"""Renewal without downtime (issue 15): issue_license --renews and the admin's Renew make a
renewal that names the license it renews; the vendor moves the binding to it; a console
Registered under that license takes the renewal and stays Registered."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

from registration import clock
from registration.authority.binding import ProblemCode, verify_for_phone
from registration.authority.issuing import Order, issue
from registration.authority.models import AuditAction as VendorAction
from registration.authority.models import AuditEvent as VendorEvent
from registration.authority.models import Binding, BindingState, IssuedLicense
from registration.authority.support import revoke
from registration.flows import upload as uploads
from registration.flows.code import Outcome, submit_code
from registration.flows.upload import UploadOutcome, upload_license
from registration.installation import get_installation
from registration.models import (
    AuditAction,
    AuditEvent,
    ChallengeState,
    QrChallenge,
    RegistrationState,
)
from registration.protocol.license import LicenseError, parse_payload, payload_of
from registration.seal import effective_state
from tests.conftest import START
from tests.phone_steps import crafted_token, phone_code
from tests.test_commands import issue_args, run

pytestmark = pytest.mark.django_db

FIRST = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
PAGE = reverse("registration:registration")
UPLOAD = reverse("registration:upload")
REPORTS = "/reports/"
ISSUE_URL = "/admin/authority/issuedlicense/issue/"


@pytest.fixture
def registered(frozen_clock, issue):
    """A console Registered under a license the vendor bound through a scan."""
    lic, text = issue(issued_at=FIRST, max_nodes=1, expires_at=date(2027, 1, 31))
    result = upload_license(text.encode(), "container")
    assert submit_code(phone_code(result.challenge)).outcome == Outcome.ACCEPTED
    assert get_installation().state == RegistrationState.REGISTERED
    return lic, text


def renew(lic, **changes) -> str:
    """Issue a renewal of lic as business staff do (the one issuing process)."""
    values = dict(
        company=lic.company,
        project_name=lic.project_name,
        app_name=lic.app_name,
        app_version=lic.app_version,
        project_content=lic.project_content,
        license_type=lic.license_type,
        contract_date=lic.contract_date.isoformat(),
        expires="2028-01-31",
        max_nodes=lic.max_nodes,
        renews=str(lic.license_id),
    )
    values.update(changes)
    return issue(Order(**values), now=START).text


def upload(client: Client, text: str):
    return client.post(
        UPLOAD,
        {"auth_method": "container", "license": SimpleUploadedFile("Container.lic", text.encode())},
    )


# --- The console: no downtime -------------------------------------------------------


def test_a_registered_console_takes_its_renewal_and_stays_registered(
    registered, manager_client, monkeypatch
):
    old, _ = registered
    renewal = renew(old)
    assert manager_client.get(REPORTS).status_code == 200
    entries_before = AuditEvent.objects.count()
    during: list[int] = []
    real_save = uploads.save_installation

    def save_and_look(row, **changes):
        # Inside the upload's transaction: the page behind the gate is still open.
        real_save(row, **changes)
        during.append(manager_client.get(REPORTS).status_code)

    monkeypatch.setattr(uploads, "save_installation", save_and_look)

    response = upload(manager_client, renewal)

    assert response.status_code == 302 and response["Location"] == PAGE
    # The redirect's page first: the next page shown takes the message.
    page = manager_client.get(PAGE)
    assert during == [200]
    assert manager_client.get(REPORTS).status_code == 200
    row = get_installation()
    assert effective_state(row) == RegistrationState.REGISTERED
    assert row.license.license_id == payload_of(renewal).license_id
    assert row.license.expires_at == date(2028, 1, 31)
    assert not QrChallenge.objects.filter(state=ChallengeState.OPEN).exists()
    new_entries = AuditEvent.objects.order_by("id")[entries_before:]
    assert [(e.action, e.detail["renewal"], e.detail["renews"]) for e in new_entries] == [
        (AuditAction.UPLOAD_ACCEPTED, True, str(old.license_id))
    ]
    assert "License renewed: valid through 2028/01/31" in page.text
    assert f"Renewed from {old.license_id}" in page.text
    assert 'id="qr-code"' not in page.text and "<canvas" not in page.text


def test_the_renewal_as_a_flow_outcome(registered):
    old, _ = registered
    result = upload_license(renew(old, max_nodes=3, expires="2027-01-31").encode(), "container")
    assert result.outcome == UploadOutcome.RENEWED
    assert not result.accepted  # no QR challenge
    assert get_installation().license.max_nodes == 3


def test_a_renewal_of_another_license_is_a_normal_upload(registered, issue):
    other, _ = issue(company="Acme Ltd", issued_at=FIRST)
    renewal_of_other = renew(other)

    result = upload_license(renewal_of_other.encode(), "container")

    assert result.outcome == UploadOutcome.NEEDS_CONFIRMATION
    assert get_installation().state == RegistrationState.REGISTERED
    installed = upload_license(renewal_of_other.encode(), "container", replace_registration=True)
    assert installed.outcome == UploadOutcome.INSTALLED and installed.accepted
    assert get_installation().state == RegistrationState.UNREGISTERED


def test_a_license_naming_ours_but_for_another_project_is_a_normal_upload(registered, issue):
    old, _ = registered
    # Signed by hand (the vendor's form would refuse it): same renews, another project.
    _, text = issue(project_name="Other project", renews=old.license_id, issued_at=START)

    assert upload_license(text.encode(), "container").outcome == UploadOutcome.NEEDS_CONFIRMATION


def test_a_license_that_is_no_renewal_is_a_normal_upload(registered, issue):
    _, text = issue(issued_at=START, expires_at=date(2028, 1, 31))

    assert upload_license(text.encode(), "container").outcome == UploadOutcome.NEEDS_CONFIRMATION
    assert get_installation().state == RegistrationState.REGISTERED


def test_an_older_renewal_file_is_refused_with_its_cause(registered, issue, manager_client):
    old, _ = registered
    _, text = issue(renews=old.license_id, issued_at=FIRST - timedelta(days=1))

    result = upload_license(text.encode(), "container")

    assert result.outcome == UploadOutcome.REFUSED
    assert "license_superseded" in result.validation.codes
    assert get_installation().license.license_id == old.license_id
    assert get_installation().state == RegistrationState.REGISTERED


def test_an_unregistered_console_registers_a_renewal_as_any_license(frozen_clock, issue):
    old, text = issue(issued_at=FIRST)
    assert upload_license(text.encode(), "container").accepted

    result = upload_license(renew(old).encode(), "container")

    assert result.outcome == UploadOutcome.INSTALLED and result.accepted


# --- The vendor: lineage and the binding ----------------------------------------------


def test_the_binding_moves_to_the_renewal_and_the_old_license_is_not_bound_again(registered):
    old, old_text = registered
    binding = Binding.objects.get()
    chain_tip = binding.chain_tip

    renewal = renew(old)

    new_row = IssuedLicense.objects.get(license_id=payload_of(renewal).license_id)
    binding.refresh_from_db()
    assert binding.license == new_row and binding.state == BindingState.ACTIVE
    assert binding.chain_tip == chain_tip
    assert not Binding.objects.filter(license__license_id=old.license_id).exists()
    moved = VendorEvent.objects.get(action=VendorAction.BINDING_RENEWED)
    assert moved.license_id == new_row.license_id
    assert moved.detail["renews"] == str(old.license_id)
    # Another server holding the old file cannot bind it: it was renewed.
    token = crafted_token(old.license_id, installation_id=uuid.uuid4())
    scanned = verify_for_phone(token, now=clock.now())
    assert ProblemCode.RENEWED in {p.code for p in scanned.problems}


def test_lineage_is_shown_both_ways_in_the_vendors_admin(registered, admin_client):
    old, _ = registered
    renewal = renew(old)
    old_row = IssuedLicense.objects.get(license_id=old.license_id)
    new_row = IssuedLicense.objects.get(license_id=payload_of(renewal).license_id)
    assert new_row.renews == old_row

    new_page = admin_client.get(reverse("admin:authority_issuedlicense_change", args=[new_row.pk]))
    old_page = admin_client.get(reverse("admin:authority_issuedlicense_change", args=[old_row.pk]))

    assert str(old_row) in new_page.text  # renews
    assert str(new_row.license_id) in old_page.text  # renewed by
    listing = admin_client.get("/admin/authority/issuedlicense/").text
    assert "renewed" in listing


def test_renew_in_the_admin_form_is_prefilled(registered, django_user_model):
    old, _ = registered
    user = django_user_model.objects.create_user("issuer", password="pw-issuer-1", is_staff=True)
    user.groups.add(Group.objects.get(name="License issuers"))
    client = Client()
    client.force_login(user)
    old_row = IssuedLicense.objects.get(license_id=old.license_id)

    form = client.get(ISSUE_URL, {"renews": old_row.pk})
    assert form.status_code == 200
    values = {name: form.context["form"][name].value() for name in form.context["form"].fields}
    assert values["renews"] == str(old.license_id) and values["company"] == old.company
    values = {k: "" if v is None else str(v) for k, v in values.items()}
    values.update(expires="2028-01-31", kid="test-1")
    preview = client.post(ISSUE_URL, {**values, "step": "preview"})
    assert json.loads(preview.context["payload"])["renews"] == str(old.license_id)
    # Sign sends back what the preview holds: the license id it chose, and its token.
    previewed = preview.context["form"]
    signed = client.post(
        ISSUE_URL,
        {
            **{name: previewed[name].value() or "" for name in previewed.fields},
            "preview_token": preview.context["preview_token"],
            "step": "sign",
        },
    )
    assert signed.status_code == 200
    assert payload_of(signed.content.decode()).renews == old.license_id
    # Changing the company is refused on the field.
    refused = client.post(ISSUE_URL, {**values, "company": "Other", "step": "preview"})
    assert refused.status_code == 400
    assert [e.code for e in refused.context["form"].errors.as_data()["renews"]] == [
        "renews_renewed"
    ]
    assert client.get(ISSUE_URL, {"renews": "nope"}).status_code == 404


# --- The command's --renews -----------------------------------------------------------


def test_issue_license_renews_writes_the_lineage(tmp_path, registered):
    old, _ = registered
    target = tmp_path / "renewal.lic"
    out, _ = run(
        "issue_license",
        *issue_args(target, expires="2028-01-31", max_nodes="1"),
        "--renews",
        str(old.license_id),
    )
    lic = payload_of(Path(target).read_text())
    assert lic.renews == old.license_id
    assert f"It renews license {old.license_id}." in out
    assert IssuedLicense.objects.get(license_id=lic.license_id).renews.license_id == old.license_id


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"company": "Globex"}, "keeps the company"),
        ({"project_name": "Dashboards"}, "keeps the project_name"),
        ({"app_name": "OtherServer"}, "keeps the app_name"),
        ({"project_content": "bi"}, "keeps the project_content"),
        ({"expires": "2027-01-30"}, "cannot expire before"),
        ({"expires": "2027-01-31"}, "must expire later, allow more nodes"),
        ({"app_version": "12.0", "expires": "2028-01-31"}, "keeps the major version"),
        ({"app_version": "10.9", "expires": "2028-01-31"}, "keeps the major version"),
    ],
)
def test_issue_license_refuses_what_is_no_renewal(tmp_path, registered, changes, message):
    old, _ = registered
    target = tmp_path / "renewal.lic"
    args = issue_args(target, max_nodes="1", **changes)
    with pytest.raises(CommandError, match=message):
        run("issue_license", *args, "--renews", str(old.license_id))
    assert not target.exists()
    assert IssuedLicense.objects.count() == 1


def test_issue_license_renews_errors(tmp_path, registered):
    old, _ = registered
    target = tmp_path / "renewal.lic"
    args = issue_args(target, expires="2028-01-31", max_nodes="1")
    with pytest.raises(CommandError, match="--renews 'nope' is not a UUID"):
        run("issue_license", *args, "--renews", "nope")
    unknown = uuid.uuid4()
    with pytest.raises(CommandError, match=f"--renews {unknown}: no such issued license"):
        run("issue_license", *args, "--renews", str(unknown))
    renew(old)
    with pytest.raises(CommandError, match="already renewed by"):
        run("issue_license", *args, "--renews", str(old.license_id))
    assert not target.exists()


def test_a_revoked_license_cannot_be_renewed(tmp_path, registered):
    old, _ = registered
    IssuedLicense.objects.filter(license_id=old.license_id).update(revoked_at=START)
    target = tmp_path / "renewal.lic"
    with pytest.raises(CommandError, match="is revoked"):
        run(
            "issue_license",
            *issue_args(target, expires="2028-01-31", max_nodes="1"),
            "--renews",
            str(old.license_id),
        )


# --- The payload field ----------------------------------------------------------------


def _payload(**changes) -> bytes:
    fields = {
        "license_id": "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
        "license_type": "container",
        "company": "Acme Ltd",
        "project_name": "Reports",
        "app_name": "ReportServer",
        "app_version": "11.0",
        "project_content": "reports",
        "contract_date": "2026-01-15",
        "issued_at": "2026-01-15T09:30:00Z",
        "expires_at": "2027-01-31",
    }
    fields.update(changes)
    return json.dumps(fields).encode()


def test_renews_is_optional_and_strict_in_the_payload():
    assert parse_payload(_payload()).renews is None
    renews = "1a2b3c4d-0000-4000-8000-000000000001"
    assert str(parse_payload(_payload(renews=renews)).renews) == renews
    for bad in (renews.upper(), "", 5, None, "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"):
        with pytest.raises(LicenseError, match="renews"):
            parse_payload(_payload(renews=bad))


def test_the_database_holds_one_renewal_in_force(registered):
    old, _ = registered
    renewal = IssuedLicense.objects.get(license_id=payload_of(renew(old)).license_id)
    second = IssuedLicense.objects.get(pk=renewal.pk)
    second.pk = None
    second.license_id = uuid.uuid4()
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()
    # A revoked renewal does not count.
    IssuedLicense.objects.filter(pk=renewal.pk).update(revoked_at=START)
    second.save()


def test_revoking_a_renewal_gives_the_binding_back(registered):
    old, _ = registered
    binding = Binding.objects.get()
    first = IssuedLicense.objects.get(license_id=payload_of(renew(old)).license_id)
    assert Binding.objects.get().license == first

    revoke(first.pk, actor=None, reason="signed with the wrong expiry", now=START)

    binding.refresh_from_db()
    assert binding.license.license_id == old.license_id and binding.state == BindingState.ACTIVE
    returned = VendorEvent.objects.get(action=VendorAction.BINDING_RETURNED)
    assert returned.detail["revoked_renewal"] == str(first.license_id)
    # The license can be renewed again, and the binding moves to the new renewal.
    second = IssuedLicense.objects.get(
        license_id=payload_of(renew(old, expires="2028-02-28")).license_id
    )
    binding.refresh_from_db()
    assert binding.license == second
    # The console, still on the old file, scans normally while no renewal was in force.
    revoke(second.pk, actor=None, reason="again", now=START)
    token = crafted_token(old.license_id, installation_id=get_installation().installation_id)
    scanned = verify_for_phone(token, now=clock.now())
    assert ProblemCode.RENEWED not in {p.code for p in scanned.problems}
