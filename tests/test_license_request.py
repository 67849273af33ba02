"""Version Information > Request a license: the email, its mailto link, the form and access."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from registration.facts import version_information
from registration.installation import get_installation
from registration.license_request import LicenseRequest, build_email
from registration.models import NodeLease
from registration.request_forms import LicenseRequestForm, latest_contract_date
from tests.conftest import START

URL = "/system/version/request"
VERSION = {
    "app_name": "ReportServer",
    "minor_version": "11.0",
    "build_version": "11.0.20",
    "build_date": "2024-02-01",
    "project_content": "reports",
    "installation_id": "5d0f3a7e-2b1c-4e8a-9f60-1a2b3c4d5e6f",
}
GOOD = {"company": "Acme Ltd", "project_name": "Reports", "contract_date": "2026-01-15"}
EXPECTED_SUBJECT = "Official Authorization Document of Acme Ltd's Registration for ReportServer"
EXPECTED_BODY = (
    "Company name: Acme Ltd\n"
    "Project name: Reports\n"
    "Contract signing date: 2026/01/15\n"
    "Registration method: Local Container Authentication\n"
    "Maximum number of registration: 1\n"
    "Project Version: 11.0 (build 11.0.20)\n"
    "Build date: 2024/02/01\n"
    "App name: ReportServer\n"
    "Project content: reports\n"
    "Installation ID: 5d0f3a7e-2b1c-4e8a-9f60-1a2b3c4d5e6f"
)


def form(data: dict, *, now: datetime = START, multi_node: bool = False) -> LicenseRequestForm:
    return LicenseRequestForm(data, now=now, multi_node=multi_node)


def error_codes(f: LicenseRequestForm, field: str) -> list[str]:
    return [e.code for e in f.errors.as_data().get(field, [])]


def decode_mailto(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    assert parts.scheme == "mailto"
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    assert set(query) == {"subject", "body"}
    assert len(query["subject"]) == 1 and len(query["body"]) == 1
    return unquote(parts.path), query["subject"][0], query["body"][0]


def live_lease(name: str, now: datetime = START) -> NodeLease:
    return NodeLease.objects.create(
        node_name=name, boot_id=uuid.uuid4(), started_at=now, last_seen=now
    )


# --- The email ----------------------------------------------------------------------


def test_the_email_has_the_exact_title_and_body_the_vendor_expects():
    wanted = LicenseRequest("Acme Ltd", "Reports", date(2026, 1, 15), 1)

    email = build_email(wanted, VERSION, "business@vendor.example")

    assert email.recipient == "business@vendor.example"
    assert email.subject == EXPECTED_SUBJECT
    assert email.body == EXPECTED_BODY
    assert email.text == (
        f"To: business@vendor.example\nSubject: {EXPECTED_SUBJECT}\n\n{EXPECTED_BODY}\n"
    )


def test_the_maximum_number_of_registration_is_the_requested_node_count():
    email = build_email(LicenseRequest("Acme", "P", date(2026, 1, 15), 3), VERSION, "b@v.example")

    assert "\nMaximum number of registration: 3\n" in email.body


@pytest.mark.django_db
def test_the_version_facts_come_from_this_installation(settings):
    settings.APP_NAME = "FineReport"
    settings.APP_VERSION = "12.1.7"
    settings.APP_BUILD_DATE = "2025-03-09"
    settings.PROJECT_CONTENT = "dashboards"

    email = build_email(
        LicenseRequest("Acme", "P", date(2026, 1, 15)), version_information(), "b@v.ex"
    )

    assert email.subject.endswith("'s Registration for FineReport")
    lines = email.body.split("\n")
    assert "Project Version: 12.1 (build 12.1.7)" in lines
    assert "Build date: 2025/03/09" in lines
    assert "App name: FineReport" in lines
    assert "Project content: dashboards" in lines


def test_years_before_1000_are_written_with_four_digits():
    email = build_email(LicenseRequest("A", "P", date(999, 3, 4)), VERSION, "b@v.example")

    assert "Contract signing date: 0999/03/04" in email.body


@pytest.mark.parametrize(
    "company",
    ["Acme Ltd", "A&B=C?d #1 + 50% Söhne", "华为技术有限公司", "O'Brien & Sons; x=1&body=evil"],
)
def test_the_mailto_link_decodes_back_to_the_same_title_and_body(company):
    email = build_email(LicenseRequest(company, "P&Q", date(2026, 1, 15), 2), VERSION, "b@v.ex")

    recipient, subject, body = decode_mailto(email.mailto)

    assert recipient == "b@v.ex"
    assert subject == email.subject
    assert body == email.body.replace("\n", "\r\n")


def test_the_mailto_link_has_crlf_line_breaks_and_no_raw_blanks():
    email = build_email(LicenseRequest("Acme Ltd", "Reports", date(2026, 1, 15)), VERSION, "b@v")

    assert email.mailto.startswith("mailto:b@v?subject=Official%20Authorization%20Document%20of")
    assert "Company%20name%3A%20Acme%20Ltd%0D%0AProject%20name" in email.mailto
    assert not re.search(r"[\s+]", email.mailto)


# --- The form -----------------------------------------------------------------------


def test_a_good_request_on_a_single_node_asks_for_one_node():
    f = form(GOOD)

    assert f.is_valid(), f.errors
    assert f.cleaned_data["max_nodes"] == 1
    assert "cluster" in f.fields


@pytest.mark.parametrize("field", ["company", "project_name", "contract_date"])
@pytest.mark.parametrize("value", ["", "   "])
def test_each_field_is_required(field, value):
    f = form({**GOOD, field: value})

    assert not f.is_valid()
    assert error_codes(f, field) == ["required"]


@pytest.mark.parametrize("field", ["company", "project_name"])
def test_names_may_have_200_characters_but_not_201(field):
    assert form({**GOOD, field: "x" * 200}).is_valid()

    f = form({**GOOD, field: "x" * 201})
    assert not f.is_valid()
    assert error_codes(f, field) == ["max_length"]


@pytest.mark.parametrize(
    "bad",
    ["Acme\tLtd", "Acme\nLtd", "Acme\x85Ltd", "Acme\u2028Ltd", "Acme\u200bLtd", "Acme\u202eLtd"],
)
@pytest.mark.parametrize("field", ["company", "project_name"])
def test_names_with_control_characters_are_refused(field, bad):
    f = form({**GOOD, field: bad})

    assert not f.is_valid()
    assert error_codes(f, field) == ["control"]
    assert "control characters" in f.errors[field][0]


def test_a_null_character_is_refused():
    f = form({**GOOD, "company": "Acme\x00"})

    assert not f.is_valid()
    assert error_codes(f, "company") == ["null_characters_not_allowed"]


@pytest.mark.parametrize("value", ["2026/01/15", "2026-01-15"])
def test_the_date_may_be_written_with_dashes_or_slashes(value):
    f = form({**GOOD, "contract_date": value})

    assert f.is_valid(), f.errors
    assert f.cleaned_data["contract_date"] == date(2026, 1, 15)


@pytest.mark.parametrize("value", ["2026-02-30", "15/01/2026", "20260115", "yesterday"])
def test_a_date_that_is_not_a_real_yyyy_mm_dd_date_is_refused(value):
    f = form({**GOOD, "contract_date": value})

    assert not f.is_valid()
    assert error_codes(f, "contract_date") == ["invalid"]


def test_the_latest_contract_date_is_today_somewhere_on_earth():
    # UTC+14 turns to the next day at 10:00 UTC.
    assert latest_contract_date(datetime(2026, 6, 1, 9, 59, 59, tzinfo=UTC)) == date(2026, 6, 1)
    assert latest_contract_date(datetime(2026, 6, 1, 10, 0, 0, tzinfo=UTC)) == date(2026, 6, 2)


def test_a_contract_signed_today_anywhere_passes_and_the_day_after_is_the_future():
    # START is 2026-06-01 12:00 UTC: 2026-06-02 02:00 at UTC+14.
    assert form({**GOOD, "contract_date": "2026-06-02"}).is_valid()

    f = form({**GOOD, "contract_date": "2026-06-03"})
    assert not f.is_valid()
    assert error_codes(f, "contract_date") == ["future"]
    assert "cannot be in the future (after 2026/06/02)" in f.errors["contract_date"][0]


def test_the_date_input_is_capped_at_the_latest_date():
    assert 'max="2026-06-02"' in str(form({})["contract_date"])


def test_a_cluster_ticked_on_a_single_node_asks_for_its_number():
    f = form({**GOOD, "cluster": "on", "max_nodes": "3"})

    assert f.is_valid(), f.errors
    assert f.cleaned_data["max_nodes"] == 3


def test_a_ticked_cluster_needs_a_number():
    f = form({**GOOD, "cluster": "on", "max_nodes": ""})

    assert not f.is_valid()
    assert error_codes(f, "max_nodes") == ["required"]


def test_a_number_of_nodes_without_ticking_cluster_is_questioned():
    f = form({**GOOD, "max_nodes": "3"})

    assert not f.is_valid()
    assert error_codes(f, "max_nodes") == ["not_cluster"]


@pytest.mark.parametrize(
    ("value", "code"), [("0", "min_value"), ("-1", "min_value"), ("10001", "max_value")]
)
def test_the_number_of_nodes_is_from_1_to_10000(value, code):
    assert form({**GOOD, "cluster": "on", "max_nodes": "10000"}).is_valid()

    f = form({**GOOD, "cluster": "on", "max_nodes": value})
    assert not f.is_valid()
    assert error_codes(f, "max_nodes") == [code]


def test_on_several_nodes_the_number_is_always_asked():
    f = form({**GOOD}, multi_node=True)

    assert "cluster" not in f.fields
    assert not f.is_valid()
    assert error_codes(f, "max_nodes") == ["required"]
    assert form({**GOOD, "max_nodes": "2"}, multi_node=True).is_valid()


# --- The page -----------------------------------------------------------------------


@pytest.mark.django_db
def test_version_information_links_to_the_request_page(manager_client: Client):
    response = manager_client.get(reverse("registration:version"))

    assert response.status_code == 200
    assert f'id="request-license" href="{URL}"'.encode() in response.content


@pytest.mark.django_db
def test_the_url_is_named_license_request():
    assert reverse("registration:license_request") == URL


@pytest.mark.django_db
def test_on_a_single_node_the_page_offers_the_cluster_box(manager_client: Client, frozen_clock):
    response = manager_client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="company"' in html and 'name="project_name"' in html
    assert 'name="contract_date"' in html and 'type="date"' in html
    assert 'name="cluster"' in html and 'class="cluster-only"' in html
    assert 'id="license-request-email"' not in html


@pytest.mark.django_db
def test_on_two_live_nodes_the_page_asks_the_number_with_the_live_count(
    manager_client: Client, frozen_clock
):
    live_lease("node-b")

    response = manager_client.get(URL)

    html = response.content.decode()
    assert 'name="cluster"' not in html
    assert re.search(r'<input[^>]*name="max_nodes"[^>]*value="2"', html)
    assert "2 nodes are running." in html


@pytest.mark.django_db
def test_a_good_request_shows_the_mailto_link_the_copy_button_and_the_text(
    manager_client: Client, frozen_clock, settings
):
    settings.LICENSE_REQUEST_EMAIL = "licenses@vendor.example"

    response = manager_client.post(URL, GOOD)

    assert response.status_code == 200
    email = response.context["email"]
    assert email.recipient == "licenses@vendor.example"
    assert email.subject == EXPECTED_SUBJECT
    installation_id = str(get_installation().installation_id)
    assert email.body == EXPECTED_BODY.replace(VERSION["installation_id"], installation_id)
    html = response.content.decode()
    assert f'id="mailto-link" href="{email.mailto.replace("&", "&amp;")}"' in html
    assert '<button type="button" id="copy-request"' in html
    # The text block is always there; the copy button only appears with JavaScript.
    assert re.search(r'id="copy-request"[^>]* hidden>', html)
    assert "Acme Ltd&#x27;s Registration for ReportServer" in html
    assert "Contract signing date: 2026/01/15\nRegistration method" in html


@pytest.mark.django_db
def test_markup_in_a_company_name_is_shown_as_text(manager_client: Client, frozen_clock):
    response = manager_client.post(URL, {**GOOD, "company": "<b>Acme</b>"})

    assert response.status_code == 200
    assert b"<b>Acme</b>" not in response.content
    assert b"&lt;b&gt;Acme&lt;/b&gt;" in response.content


@pytest.mark.django_db
def test_a_cluster_request_on_two_nodes_carries_the_number(manager_client: Client, frozen_clock):
    live_lease("node-b")

    response = manager_client.post(URL, {**GOOD, "max_nodes": "4"})

    assert response.status_code == 200
    assert "Maximum number of registration: 4" in response.context["email"].body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({**GOOD, "company": ""}, "company", "Enter the company name as in the contract."),
        ({**GOOD, "project_name": ""}, "project_name", "Enter the project name."),
        ({**GOOD, "contract_date": "2026-06-03"}, "contract_date", "cannot be in the future"),
        ({**GOOD, "contract_date": "2026-13-01"}, "contract_date", "as YYYY-MM-DD"),
        ({**GOOD, "company": "a\tb"}, "company", "Remove the control characters"),
        ({**GOOD, "cluster": "on", "max_nodes": "0"}, "max_nodes", "greater than or equal to 1"),
        ({**GOOD, "cluster": "on", "max_nodes": "abc"}, "max_nodes", "Enter a whole number."),
    ],
)
def test_bad_input_is_400_with_the_form_errors(
    manager_client: Client, frozen_clock, data, field, message
):
    response = manager_client.post(URL, data)

    assert response.status_code == 400
    assert "email" not in response.context
    assert message in response.content.decode()
    assert f'id="{field}-error"' in response.content.decode()


@pytest.mark.django_db
def test_an_empty_post_is_400_not_500(manager_client: Client, frozen_clock):
    response = manager_client.post(URL, {})

    assert response.status_code == 400


# --- Access -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_is_sent_to_the_login_page(client: Client, method):
    response = getattr(client, method)(URL)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={URL}"


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_staff_without_the_permission_gets_403(staff_client: Client, method):
    response = getattr(staff_client, method)(URL, GOOD)

    assert response.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_other_methods_are_405(manager_client: Client, method):
    response = getattr(manager_client, method)(URL)

    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"


@pytest.mark.django_db
def test_a_post_without_the_csrf_token_is_403(csrf_client: Client, frozen_clock):
    response = csrf_client.post(URL, GOOD)

    assert response.status_code == 403


@pytest.mark.django_db
def test_a_post_with_the_csrf_token_from_the_page_passes(csrf_client: Client, frozen_clock):
    page = csrf_client.get(URL)
    token = page.cookies["csrftoken"].value

    response = csrf_client.post(URL, {**GOOD, "csrfmiddlewaretoken": token})

    assert response.status_code == 200
    assert response.context["email"].subject == EXPECTED_SUBJECT


# --- No inline script ---------------------------------------------------------------


class ScriptAudit(HTMLParser):
    """Collect what a strict Content-Security-Policy would block."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        named = dict(attrs)
        if tag == "script":
            self.scripts.append(named)
            self._in_script = True
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.inline.append(f"<{tag} {name}={value!r}>")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline.append(data)


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_the_page_has_no_inline_script(manager_client: Client, frozen_clock, method):
    response = getattr(manager_client, method)(URL, GOOD)
    audit = ScriptAudit()
    audit.feed(response.content.decode())

    assert audit.inline == []
    assert [s.get("src") for s in audit.scripts] == ["/static/registration/copy.js"]
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_the_copy_script_and_style_exist_as_static_files():
    script = finders.find("registration/copy.js")
    assert script is not None
    text = Path(script).read_text(encoding="utf-8")
    assert 'getElementById("copy-request")' in text
    assert "button.hidden = false" in text
    assert finders.find("registration/request.css") is not None


# --- The installation id, and values that survive a reload --------------------------


@pytest.mark.django_db
def test_version_information_shows_the_installation_id_and_one_date_format(
    manager_client: Client, frozen_clock
):
    installation_id = str(get_installation().installation_id)

    html = manager_client.get(reverse("registration:version")).content.decode()

    assert f'<code id="installation-id">{installation_id}</code>' in html
    assert 'id="build-date">2024/02/01<' in html
    assert "2024-02-01" not in html


@pytest.mark.django_db
def test_the_email_carries_the_installation_id_support_staff_search_by(
    manager_client: Client, frozen_clock
):
    installation_id = str(get_installation().installation_id)

    response = manager_client.get(URL, GOOD)

    assert response.status_code == 200
    body = response.context["email"].body
    assert body.splitlines()[-1] == f"Installation ID: {installation_id}"


@pytest.mark.django_db
def test_the_form_is_a_get_whose_address_keeps_the_values(manager_client: Client, frozen_clock):
    page = manager_client.get(URL).content.decode()
    assert re.search(r'<form method="get" action="/system/version/request[^"]*" id="license', page)

    response = manager_client.get(URL, {**GOOD, "cluster": "on", "max_nodes": "3"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "Maximum number of registration: 3" in response.context["email"].body
    assert re.search(r'<input[^>]*name="company"[^>]*value="Acme Ltd"', html)
    assert re.search(r'<input[^>]*name="project_name"[^>]*value="Reports"', html)
    assert re.search(r'<input[^>]*name="contract_date"[^>]*value="2026-01-15"', html)
    assert re.search(r'<input[^>]*name="cluster"[^>]*checked', html)
    assert re.search(r'<input[^>]*name="max_nodes"[^>]*value="3"', html)
    # The language switch comes back to this address, values and all.
    next_url = re.search(r'name="next" value="([^"]+)"', html).group(1)
    assert next_url.startswith(f"{URL}?") and "company=Acme+Ltd" in next_url


@pytest.mark.django_db
def test_switching_the_language_after_writing_the_email_keeps_it(
    manager_client: Client, frozen_clock
):
    written = manager_client.get(URL, GOOD).content.decode()
    next_url = re.search(r'name="next" value="([^"]+)"', written).group(1).replace("&amp;", "&")

    response = manager_client.post(
        reverse("set_language"), {"language": "zh-hans", "next": next_url}, follow=True
    )

    assert response.status_code == 200
    assert response.context["email"].subject == EXPECTED_SUBJECT
    assert 'lang="zh-hans"' in response.content.decode()


@pytest.mark.django_db
def test_a_get_with_bad_values_is_400_with_the_errors(manager_client: Client, frozen_clock):
    response = manager_client.get(URL, {**GOOD, "contract_date": "2026-13-01"})

    assert response.status_code == 400
    assert "email" not in response.context
    assert 'id="contract_date-error"' in response.content.decode()
