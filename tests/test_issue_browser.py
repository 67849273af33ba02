"""Business staff issue licenses in the browser (issue 16): the admin's Issue license form,
its paste box, Preview then Sign, the download, the list of issued licenses, and who may."""

from __future__ import annotations

import importlib
import json
import re
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission
from django.core import signing
from django.test import Client
from django.urls import reverse

from registration.authority.forms import PREVIEW_TOKEN_SALT
from registration.authority.models import AuditAction, AuditEvent, Binding, IssuedLicense
from registration.flows.upload import upload_license
from registration.license_request import parse_request_email
from registration.protocol.causes import AUTH_METHOD_CONTAINER
from registration.protocol.license import fingerprint
from tests.browser import chromium, keep_screenshot, needs_chromium
from tests.conftest import START
from tests.test_commands import run_exit
from tests.test_roles import _run

ISSUE_URL = "/admin/authority/issuedlicense/issue/"
CHANGELIST = "/admin/authority/issuedlicense/"
ISSUERS = "License issuers"
SUPPORT = "Support staff"
REQUEST = {
    "company": "Acme Ltd",
    "project_name": "Reports",
    "contract_date": "2026-01-15",
    "cluster": "on",
    "max_nodes": "2",
}


# --- Personas and helpers -----------------------------------------------------------


# The migration that makes the group, for tests with real transactions: the flush
# before them empties the tables, and post_migrate makes only the permissions again.
_ISSUING_MIGRATION = importlib.import_module(
    "registration.authority.migrations.0005_license_issuing"
)


def _group(name: str) -> Group:
    group = Group.objects.filter(name=name).first()
    if group is None and name == _ISSUING_MIGRATION.GROUP_NAME:
        group = Group.objects.create(name=name)
        for model, codename in _ISSUING_MIGRATION.PERMISSIONS:
            group.permissions.add(
                Permission.objects.get(
                    content_type__app_label="authority",
                    content_type__model=model,
                    codename=codename,
                )
            )
    assert group is not None, f"no group {name!r}"
    return group


def _member(django_user_model, name: str, group: str):
    user = django_user_model.objects.create_user(name, password=f"pw-{name}-1", is_staff=True)
    user.groups.add(_group(group))
    return user


@pytest.fixture
def issuer(django_user_model):
    """Business staff: a staff user in the License issuers group the migration made."""
    return _member(django_user_model, "issuer", ISSUERS)


@pytest.fixture
def issuer_client(issuer) -> Client:
    client = Client()
    client.force_login(issuer)
    return client


@pytest.fixture
def support_client(django_user_model) -> Client:
    """Support staff: may revoke and unbind, not issue."""
    client = Client()
    client.force_login(_member(django_user_model, "support", SUPPORT))
    return client


def request_email(manager_client) -> str:
    """The email the console's Request a license helper writes, as the admin copies it."""
    response = manager_client.get("/system/version/request", REQUEST)
    assert response.status_code == 200
    return response.context["email"].text


def fields(**changes) -> dict[str, str]:
    """The form's values for a license that fits this installation."""
    values = {
        "company": "Acme Ltd",
        "project_name": "Reports",
        "app_name": "ReportServer",
        "app_version": "11.0",
        "project_content": "reports",
        "license_type": "container",
        "contract_date": "2026-01-15",
        "expires": "2027-01-31",
        "max_nodes": "1",
        "kid": "test-1",
        "license_id": "",
        "renews": "",
        "installation_id": "",
    }
    values.update(changes)
    return values


def form_values(response) -> dict[str, str]:
    """The values a rendered Issue license form would send back."""
    form = response.context["form"]
    values = {
        name: "" if form[name].value() is None else str(form[name].value()) for name in form.fields
    }
    if response.context.get("preview_token"):
        values["preview_token"] = response.context["preview_token"]
    return values


def field_codes(response, form: str = "form") -> dict[str, list[str]]:
    return {
        name: [error.code for error in errors]
        for name, errors in response.context[form].errors.as_data().items()
    }


# --- Who may ------------------------------------------------------------------------


@pytest.mark.django_db
def test_issuers_group_has_exactly_the_intended_permissions():
    group = Group.objects.get(name=ISSUERS)
    granted = {
        f"{p.content_type.app_label}.{p.codename}"
        for p in group.permissions.select_related("content_type")
    }
    assert granted == {
        "authority.view_issuedlicense",
        "authority.issue_license",
        "authority.view_binding",
    }


@pytest.mark.django_db
def test_the_changelist_links_the_form_for_issuers_only(issuer_client, support_client):
    assert ISSUE_URL in issuer_client.get(CHANGELIST).text
    listing = support_client.get(CHANGELIST)
    assert listing.status_code == 200
    assert ISSUE_URL not in listing.text


@pytest.mark.django_db
def test_support_staff_without_the_permission_get_403(support_client, frozen_clock):
    assert support_client.get(ISSUE_URL).status_code == 403
    response = support_client.post(ISSUE_URL, {**fields(), "step": "sign"})
    assert response.status_code == 403
    assert not IssuedLicense.objects.exists()


@pytest.mark.django_db
def test_staff_without_any_group_get_403(staff_client, frozen_clock):
    assert staff_client.get(ISSUE_URL).status_code == 403
    assert staff_client.post(ISSUE_URL, {**fields(), "step": "sign"}).status_code == 403


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(client, frozen_clock):
    for response in (client.get(ISSUE_URL), client.post(ISSUE_URL, {**fields(), "step": "sign"})):
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    assert not IssuedLicense.objects.exists()


@pytest.mark.django_db
def test_sign_needs_the_csrf_token(issuer, frozen_clock):
    client = Client(enforce_csrf_checks=True)
    client.force_login(issuer)
    assert client.post(ISSUE_URL, {**fields(), "step": "sign"}).status_code == 403
    assert not IssuedLicense.objects.exists()


@pytest.mark.django_db
def test_a_get_never_signs_and_other_methods_are_refused(issuer_client, frozen_clock):
    response = issuer_client.get(ISSUE_URL, {**fields(), "step": "sign"})
    assert response.status_code == 200
    assert "Content-Disposition" not in response
    assert issuer_client.put(ISSUE_URL).status_code == 405
    assert issuer_client.post(ISSUE_URL, {**fields(), "step": "launch"}).status_code == 400
    assert not IssuedLicense.objects.exists()


def test_a_console_only_install_has_no_issue_form(tmp_path):
    script = (
        "import django; django.setup()\n"
        "from django.urls import NoReverseMatch, reverse\n"
        "try:\n"
        "    reverse('admin:authority_issuedlicense_issue'); print('found')\n"
        "except NoReverseMatch:\n"
        "    print('none')\n"
    )
    done = _run("console", tmp_path, "-c", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"


# --- The paste box ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_pasted_request_email_fills_the_form(issuer_client, manager_client, frozen_clock):
    email = request_email(manager_client)

    response = issuer_client.post(ISSUE_URL, {"step": "paste", "request_email": email})

    assert response.status_code == 200
    values = form_values(response)
    installation_id = parse_request_email(email).installation_id
    assert {k: values[k] for k in ("company", "project_name", "contract_date", "max_nodes")} == {
        "company": "Acme Ltd",
        "project_name": "Reports",
        "contract_date": "2026-01-15",
        "max_nodes": "2",
    }
    assert values["app_name"] == "ReportServer"
    assert values["app_version"] == "11.0"
    assert values["project_content"] == "reports"
    assert values["installation_id"] == str(installation_id)
    assert not IssuedLicense.objects.exists()


@pytest.mark.django_db
def test_the_mail_clients_crlf_and_quoting_are_read_too(manager_client, frozen_clock):
    email = request_email(manager_client)
    quoted = "\r\n".join(f"> {line}" for line in email.split("\n"))
    assert parse_request_email(quoted) == parse_request_email(email)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "paste, codes",
    [
        ("hello, please send a license", ["missing"] * 8),
        ("", ["required"]),
        ("x" * 30_000, ["max_length"]),
    ],
)
def test_a_paste_that_is_no_request_email_gets_field_errors(
    issuer_client, frozen_clock, paste, codes
):
    response = issuer_client.post(ISSUE_URL, {"step": "paste", "request_email": paste})

    assert response.status_code == 400
    assert field_codes(response, "paste") == {"request_email": codes}
    assert "This is not a license request email" in response.text or codes != ["missing"] * 8


@pytest.mark.django_db
def test_a_damaged_request_email_names_each_bad_line(issuer_client, manager_client, frozen_clock):
    email = request_email(manager_client)
    damaged = (
        email.replace("Contract signing date: 2026/01/15", "Contract signing date: 15.01.2026")
        .replace("Maximum number of registration: 2", "Maximum number of registration: many")
        .replace("Installation ID: ", "Installation ID: not-")
    )

    response = issuer_client.post(ISSUE_URL, {"step": "paste", "request_email": damaged})

    assert response.status_code == 400
    assert field_codes(response, "paste") == {
        "request_email": ["not_date", "not_number", "not_uuid"]
    }
    assert "The line “Contract signing date: …” is not a date written YYYY/MM/DD." in response.text


# --- Preview, then Sign -------------------------------------------------------------


@pytest.mark.django_db
def test_preview_shows_the_payload_and_signs_nothing(issuer_client, frozen_clock):
    response = issuer_client.post(ISSUE_URL, {**fields(), "step": "preview"})

    assert response.status_code == 200
    payload = json.loads(response.context["payload"])
    assert payload["company"] == "Acme Ltd"
    assert payload["expires_at"] == "2027-01-31"
    uuid.UUID(payload["license_id"])
    # The id chosen for the preview is carried to Sign.
    assert form_values(response)["license_id"] == payload["license_id"]
    assert "BEGIN CONTAINER LICENSE" not in response.text
    assert not IssuedLicense.objects.exists()


@pytest.mark.django_db
def test_sign_records_audits_and_downloads_a_license_inspect_license_accepts(
    issuer_client, issuer, manager_client, frozen_clock, tmp_path
):
    email = request_email(manager_client)
    filled = issuer_client.post(ISSUE_URL, {"step": "paste", "request_email": email})
    values = {**form_values(filled), "expires": "2027-01-31", "kid": "test-0"}
    preview = issuer_client.post(ISSUE_URL, {**values, "step": "preview"})
    assert preview.status_code == 200

    signed = issuer_client.post(ISSUE_URL, {**form_values(preview), "step": "sign"})

    assert signed.status_code == 200
    assert signed["Content-Disposition"] == 'attachment; filename="Container.lic"'
    assert "no-store" in signed["Cache-Control"]
    text = signed.content.decode("ascii")
    row = IssuedLicense.objects.get()
    assert row.text == text
    assert str(row.license_id) == json.loads(preview.context["payload"])["license_id"]
    assert (row.kid, row.max_nodes, row.company) == ("test-0", 2, "Acme Ltd")
    entry = AuditEvent.objects.get(action=AuditAction.LICENSE_ISSUED)
    assert (entry.actor, entry.at, entry.license_id) == (issuer, START, row.license_id)
    assert entry.detail["kid"] == "test-0"
    assert entry.detail["installation_id_requested"] == values["installation_id"]
    # The file is checked on this installation as an admin would before uploading it.
    target = tmp_path / "Container.lic"
    target.write_bytes(signed.content)
    status, out, _ = run_exit("inspect_license", str(target))
    assert status == 0, out
    assert out.rstrip().endswith("Would be accepted.")
    # Afterwards the pages show its fingerprint, never the file.
    listing = issuer_client.get(CHANGELIST)
    assert fingerprint(text) in listing.text
    assert "BEGIN CONTAINER LICENSE" not in listing.text


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes, field, code",
    [
        ({"expires": "2027-02-30"}, "expires", "not_date"),
        ({"expires": "20270131"}, "expires", "not_date"),
        ({"expires": "2026-05-31"}, "expires", "past"),
        ({"contract_date": "15/01/2026"}, "contract_date", "not_date"),
        ({"max_nodes": "0"}, "max_nodes", "max_nodes_range"),
        ({"max_nodes": "10001"}, "max_nodes", "max_nodes_range"),
        ({"max_nodes": "many"}, "max_nodes", "invalid"),
        ({"app_version": "11.0.20"}, "app_version", "invalid_field"),
        ({"company": " "}, "company", "invalid_field"),
        ({"company": "Acme\u200bLtd"}, "company", "invalid_field"),
        ({"kid": "nope"}, "kid", "invalid_choice"),
        ({"license_id": "123"}, "license_id", "not_uuid"),
        ({"renews": str(uuid.uuid4())}, "renews", "renews_unknown"),
    ],
)
def test_bad_fields_are_refused_as_the_command_refuses_them(
    issuer_client, frozen_clock, changes, field, code
):
    for step in ("preview", "sign"):
        response = issuer_client.post(ISSUE_URL, {**fields(**changes), "step": step})
        assert response.status_code == 400
        assert field_codes(response) == {field: [code]}
    assert not IssuedLicense.objects.exists()


@pytest.mark.django_db
def test_sign_checks_again_and_refuses_an_id_issued_since_the_preview(issuer_client, frozen_clock):
    preview = issuer_client.post(ISSUE_URL, {**fields(), "step": "preview"})
    values = form_values(preview)
    assert issuer_client.post(ISSUE_URL, {**values, "step": "sign"}).status_code == 200

    again = issuer_client.post(ISSUE_URL, {**values, "step": "sign"})

    assert again.status_code == 400
    assert field_codes(again) == {"license_id": ["issued_before"]}
    assert IssuedLicense.objects.count() == 1


@pytest.mark.django_db
def test_sign_without_a_preview_shows_the_preview_and_signs_nothing(issuer_client, frozen_clock):
    refused = issuer_client.post(ISSUE_URL, {**fields(), "step": "sign"})

    assert refused.status_code == 400
    assert field_codes(refused) == {"__all__": ["not_previewed"]}
    assert "This is not the license you previewed" in refused.text
    assert json.loads(refused.context["payload"])["company"] == "Acme Ltd"
    assert not IssuedLicense.objects.exists()
    # The preview it shows is one that can be signed.
    signed = issuer_client.post(ISSUE_URL, {**form_values(refused), "step": "sign"})
    assert signed.status_code == 200
    assert str(IssuedLicense.objects.get().license_id) == form_values(refused)["license_id"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes",
    [
        {"max_nodes": "20"},
        {"expires": "2027-12-31"},
        {"company": "Acme Ltd."},
        {"kid": "test-0"},
        {"project_name": "Reports 2"},
        {"app_version": "11.1"},
        {"project_content": "reports, dashboards"},
        {"license_type": "machine"},
        {"contract_date": "2026-01-16"},
        {"license_id": ""},
        {"license_id": str(uuid.UUID(int=7))},
        {"installation_id": str(uuid.UUID(int=8))},
    ],
)
def test_sign_refuses_values_changed_since_the_preview(issuer_client, frozen_clock, changes):
    preview = issuer_client.post(ISSUE_URL, {**fields(), "step": "preview"})
    values = form_values(preview)

    refused = issuer_client.post(ISSUE_URL, {**values, **changes, "step": "sign"})

    assert refused.status_code == 400
    assert field_codes(refused) == {"__all__": ["not_previewed"]}
    assert not IssuedLicense.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["", "garbage", "0" * 64, "forged:token"])
def test_sign_refuses_a_missing_or_forged_preview_token(issuer_client, frozen_clock, token):
    preview = issuer_client.post(ISSUE_URL, {**fields(), "step": "preview"})
    values = {**form_values(preview), "preview_token": token}

    refused = issuer_client.post(ISSUE_URL, {**values, "step": "sign"})

    assert refused.status_code == 400
    assert field_codes(refused) == {"__all__": ["not_previewed"]}
    assert not IssuedLicense.objects.exists()


def _digest_of(token: str) -> str:
    """The values' digest inside a preview token (digest:user:time:signature)."""
    return token.split(":")[0]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "forge",
    [
        # The same digest, signed with the server's key but without the preview's salt.
        lambda token: signing.Signer().sign(token.rsplit(":", 1)[0]),
        # Signed with the preview's salt but another key: only the server can make one.
        lambda token: signing.Signer(key="x" * 50, salt=PREVIEW_TOKEN_SALT).sign(
            token.rsplit(":", 1)[0]
        ),
        # The bare digest anyone could compute from the form's values.
        _digest_of,
    ],
    ids=["no-salt", "other-key", "bare-digest"],
)
def test_only_the_server_makes_a_preview_token(issuer_client, frozen_clock, forge):
    preview = issuer_client.post(ISSUE_URL, {**fields(), "step": "preview"})
    values = form_values(preview)
    values["preview_token"] = forge(values["preview_token"])

    refused = issuer_client.post(ISSUE_URL, {**values, "step": "sign"})

    assert refused.status_code == 400
    assert field_codes(refused) == {"__all__": ["not_previewed"]}
    assert not IssuedLicense.objects.exists()


@pytest.mark.django_db
def test_a_preview_signs_for_the_user_who_made_it_only(
    issuer_client, django_user_model, frozen_clock
):
    preview = issuer_client.post(ISSUE_URL, {**fields(), "step": "preview"})
    other = Client()
    other.force_login(_member(django_user_model, "issuer2", ISSUERS))

    refused = other.post(ISSUE_URL, {**form_values(preview), "step": "sign"})

    assert refused.status_code == 400
    assert field_codes(refused) == {"__all__": ["not_previewed"]}
    assert not IssuedLicense.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("age, status", [(3600, 200), (3601, 400)])
def test_a_preview_is_good_for_an_hour(issuer_client, frozen_clock, age, status):
    preview = issuer_client.post(ISSUE_URL, {**fields(), "step": "preview"})
    frozen_clock.advance(seconds=age)

    signed = issuer_client.post(ISSUE_URL, {**form_values(preview), "step": "sign"})

    assert signed.status_code == status
    assert IssuedLicense.objects.count() == (1 if status == 200 else 0)


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["not a uuid <script>", "x" * 5000])
def test_an_installation_id_that_is_not_one_is_refused(issuer_client, frozen_clock, value):
    for step in ("preview", "sign"):
        response = issuer_client.post(ISSUE_URL, {**fields(installation_id=value), "step": step})
        assert response.status_code == 400
        assert field_codes(response) == {"installation_id": ["not_uuid"]}
    assert not IssuedLicense.objects.exists()


@pytest.mark.django_db
def test_the_preview_shows_the_installation_id_the_audit_will_keep(issuer_client, frozen_clock):
    installation = uuid.UUID(int=9)
    preview = issuer_client.post(
        ISSUE_URL, {**fields(installation_id=str(installation).upper()), "step": "preview"}
    )
    assert f"Requested by installation {installation}" in preview.text

    signed = issuer_client.post(ISSUE_URL, {**form_values(preview), "step": "sign"})

    assert signed.status_code == 200
    entry = AuditEvent.objects.get(action=AuditAction.LICENSE_ISSUED)
    assert entry.detail["installation_id_requested"] == str(installation)


# --- The list of issued licenses ----------------------------------------------------


@pytest.mark.django_db
def test_the_list_is_searched_by_company_project_and_installation(
    issuer_client, issue, frozen_clock
):
    acme, acme_text = issue(company="Acme Ltd", project_name="Reports")
    globex, _ = issue(company="Globex Corp", project_name="Dashboards")
    result = upload_license(acme_text.encode("ascii"), AUTH_METHOD_CONTAINER)
    assert Client().get(reverse("phone:verify", args=[result.challenge.token])).status_code == 200
    installation_id = Binding.objects.get().installation_id

    def found(query: str) -> set[str]:
        text = issuer_client.get(CHANGELIST, {"q": query}).text
        return {str(lic.license_id) for lic in (acme, globex) if str(lic.license_id) in text}

    assert found("globex") == {str(globex.license_id)}
    assert found("Dashboards") == {str(globex.license_id)}
    assert found(str(installation_id)) == {str(acme.license_id)}


@pytest.mark.django_db
def test_the_list_shows_expiry_binding_state_and_row_actions(
    issuer_client, support_client, issue, frozen_clock
):
    bound, text = issue(company="Bound Co")
    result = upload_license(text.encode("ascii"), AUTH_METHOD_CONTAINER)
    Client().get(reverse("phone:verify", args=[result.challenge.token]))
    issue(company="Free Co")
    bound_row = IssuedLicense.objects.get(license_id=bound.license_id)

    listing = issuer_client.get(CHANGELIST)
    cells = re.findall(r'<td class="field-state">([^<]*)</td>', listing.text)
    assert sorted(cells) == ["bound", "not bound"]
    assert "2027/01/31" in listing.text or "Jan. 31, 2027" in listing.text
    renew = f"{ISSUE_URL}?renews={bound_row.pk}"
    assert renew in listing.text
    revoke = reverse("admin:authority_issuedlicense_revoke", args=[bound_row.pk])
    # Issuers renew; support staff revoke.
    assert revoke not in listing.text
    support_listing = support_client.get(CHANGELIST).text
    assert revoke in support_listing
    assert renew not in support_listing


# --- In a real browser --------------------------------------------------------------


@pytest.mark.browser
@needs_chromium
@pytest.mark.django_db(transaction=True)
def test_issue_a_license_in_chromium(live_server, issuer, manager_client, frozen_clock, tmp_path):
    email = request_email(manager_client)
    session = Client()
    session.force_login(issuer)
    cookie = session.cookies["sessionid"].value
    base = live_server.url

    with chromium() as browser:
        context = browser.new_context(accept_downloads=True, locale="en-US")
        context.set_default_timeout(10_000)
        context.add_cookies([{"name": "sessionid", "value": cookie, "url": base}])
        page = context.new_page()
        page.goto(base + CHANGELIST)
        page.click("text=Issue license")
        page.fill("#id_request_email", email)
        page.click("#fill")
        assert page.input_value("#id_company") == "Acme Ltd"
        assert page.input_value("#id_max_nodes") == "2"
        page.fill("#id_expires", "2027-01-31")
        page.click("#preview")
        assert '"company": "Acme Ltd"' in page.inner_text("#payload")
        keep_screenshot(page, "issue-license-preview")
        with page.expect_download() as download_info:
            page.click("#sign")
        download = download_info.value
        assert download.suggested_filename == "Container.lic"
        saved = tmp_path / "Container.lic"
        download.save_as(str(saved))
        page.goto(base + CHANGELIST)
        message = page.inner_text(".messagelist")
        keep_screenshot(page, "issue-license-done")
        context.close()

    text = Path(saved).read_text()
    assert fingerprint(text) in message
    status, out, _ = run_exit("inspect_license", str(saved))
    assert status == 0, out
