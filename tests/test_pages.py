"""The pages' HTML: labelled fields, real buttons, no inline script or style, no third-party
resource, forms that work with JavaScript off, and the hooks the static scripts use."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.staticfiles import finders
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from registration import status
from registration.flows.upload import upload_license
from registration.models import ChallengeState, Installation, QrChallenge, RegistrationState
from registration.protocol.causes import AUTH_METHOD_CONTAINER
from tests.node_steps import register

pytestmark = pytest.mark.django_db

REGISTRATION = reverse("registration:registration")
STATIC_DIR = Path(settings.BASE_DIR) / "static" / "registration"
# Form controls a person fills in or picks; hidden fields and buttons need no label.
UNLABELLED_TYPES = {"hidden", "submit", "button", "reset", "image"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


class Page(HTMLParser):
    """Every element of a page with its attributes, and the text inside scripts/styles."""

    def __init__(self, body: str) -> None:
        super().__init__(convert_charrefs=True)
        self.body = body
        self.elements: list[Element] = []
        self._open_raw: Element | None = None
        self.feed(body)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.elements.append(element)
        if tag in ("script", "style"):
            self._open_raw = element

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._open_raw = None

    def handle_data(self, data: str) -> None:
        if self._open_raw is not None:
            self._open_raw.text += data

    def all(self, tag: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag]

    def by_id(self, id_: str) -> Element | None:
        return next((e for e in self.elements if e.attrs.get("id") == id_), None)


def get_ok(client: Client, url: str, status_code: int = 200) -> str:
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == status_code, response.content[:500]
    return response.content.decode()


def open_challenge(issue) -> QrChallenge:
    _, text = issue()
    assert upload_license(text.encode(), AUTH_METHOD_CONTAINER).accepted
    return QrChallenge.objects.get(state=ChallengeState.OPEN)


# --- The pages, each in the state that shows the most of it -------------------------


def login_page(client, **_) -> str:
    return get_ok(client, reverse("login"))


def upload_form(manager_client, **_) -> str:
    return get_ok(manager_client, REGISTRATION + "?register=1")


def failure_panel(manager_client, issue, **_) -> str:
    _, text = issue(app_version="10.0", expires_at=date(2026, 5, 31))
    response = manager_client.post(
        reverse("registration:upload"),
        {
            "auth_method": AUTH_METHOD_CONTAINER,
            "license": SimpleUploadedFile("Container.lic", text.encode()),
        },
        HTTP_ACCEPT_LANGUAGE="en",
        follow=True,
    )
    assert response.status_code == 422
    return response.content.decode()


def qr_code(manager_client, issue, **_) -> str:
    open_challenge(issue)
    return get_ok(manager_client, REGISTRATION)


def wrong_code(manager_client, issue, **_) -> str:
    open_challenge(issue)
    response = manager_client.post(reverse("registration:code"), {"code": "000000"})
    assert response.status_code == 400
    return response.content.decode()


def expired_qr_code(manager_client, issue, frozen_clock, **_) -> str:
    open_challenge(issue)
    frozen_clock.advance(minutes=5)
    return get_ok(manager_client, REGISTRATION)


def version_page(manager_client, **_) -> str:
    return get_ok(manager_client, reverse("registration:version"))


def license_request(manager_client, **_) -> str:
    response = manager_client.post(
        reverse("registration:license_request"),
        {
            "company": "Example Ltd",
            "project_name": "Reports",
            "contract_date": "2026-05-01",
            "max_nodes": "1",
        },
    )
    return response.content.decode()


def reports_page(manager_client, **_) -> str:
    return get_ok(manager_client, reverse("reports"), status_code=403)


def restart_reminder(manager_client, issue, **_) -> str:
    register(issue()[1])
    Installation.objects.update(state=RegistrationState.EXPIRED_DUE_TO_RESTART)
    status.invalidate()
    return get_ok(manager_client, reverse("registration:version"))


def phone_code(client, issue, **_) -> str:
    challenge = open_challenge(issue)
    return get_ok(client, reverse("phone:verify", kwargs={"token": challenge.token}))


def phone_problem(client, issue, frozen_clock, **_) -> str:
    challenge = open_challenge(issue)
    frozen_clock.advance(minutes=5)
    return get_ok(client, reverse("phone:verify", kwargs={"token": challenge.token}), 410)


PAGES = {
    f.__name__: f
    for f in (
        login_page,
        upload_form,
        failure_panel,
        qr_code,
        wrong_code,
        expired_qr_code,
        version_page,
        license_request,
        reports_page,
        restart_reminder,
        phone_code,
        phone_problem,
    )
}


@pytest.fixture(params=sorted(PAGES))
def page(request, client, manager_client, issue, frozen_clock) -> Page:
    body = PAGES[request.param](
        client=client, manager_client=manager_client, issue=issue, frozen_clock=frozen_clock
    )
    return Page(body)


# --- Rules every page keeps ---------------------------------------------------------


def test_every_field_has_a_label_naming_it(page):
    labelled = {label.attrs.get("for") for label in page.all("label")}
    fields = [
        e
        for e in page.elements
        if e.tag in ("select", "textarea")
        or (e.tag == "input" and e.attrs.get("type", "text") not in UNLABELLED_TYPES)
    ]
    assert fields, "every page checked here has a field (at least the language switch)"
    for element in fields:
        name = element.attrs.get("name")
        assert element.attrs.get("id"), f"field {name!r} has no id for a label to name"
        assert element.attrs["id"] in labelled, f"field {name!r} has no <label for=...>"


def test_ids_are_unique(page):
    ids = [e.attrs["id"] for e in page.elements if "id" in e.attrs]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_every_control_is_a_button_or_a_link(page):
    # Native buttons and links are reachable with Tab and work with Enter.
    for element in page.elements:
        assert not (element.tag == "input" and element.attrs.get("type") in {"submit", "button"})
        assert element.attrs.get("role") != "button" or element.tag == "button"
        assert "tabindex" not in element.attrs or element.attrs["tabindex"] in {"0", "-1"}
    for button in page.all("button"):
        assert button.attrs.get("type") in {"submit", "button"}, button.attrs
    for link in page.all("a"):
        assert link.attrs.get("href"), link.attrs


def test_no_inline_script_or_style(page):
    # The Content-Security-Policy allows scripts and styles from files only.
    for element in page.elements:
        assert "style" not in element.attrs, element
        assert not [a for a in element.attrs if a.startswith("on")], element
        if element.tag == "script":
            assert element.attrs.get("src") and not element.text.strip(), element
        assert element.tag != "style"
    for link in page.all("a"):
        assert not link.attrs["href"].lower().startswith("javascript:")


def test_scripts_and_styles_are_our_own_files_that_exist(page):
    # No CDN, no web fonts: the servers have no internet.
    resources = [s.attrs["src"] for s in page.all("script")] + [
        link.attrs["href"] for link in page.all("link") if link.attrs.get("rel") == "stylesheet"
    ]
    assert resources
    for url in resources:
        assert url.startswith(settings.STATIC_URL), url
        assert finders.find(url.removeprefix(settings.STATIC_URL)), f"{url} does not exist"
    for image in page.all("img"):
        assert image.attrs["src"].startswith(("data:image/png;base64,", "/")), image
        assert image.attrs.get("alt"), image


def test_every_form_works_without_javascript(page):
    forms = page.all("form")
    assert forms
    for form in forms:
        assert form.attrs.get("action"), form.attrs
        assert form.attrs.get("method") in {"get", "post"}, form.attrs
    # Every POST form carries its CSRF token in a field, so a plain submit is accepted.
    body_forms = re.findall(r"<form\b[^>]*>.*?</form>", page.body, flags=re.S)
    for form in body_forms:
        if 'method="post"' in form:
            assert 'name="csrfmiddlewaretoken"' in form, form[:200]


# --- The hooks of the static scripts ------------------------------------------------


def test_the_qr_section_counts_down_and_refreshes_in_place(manager_client, issue, frozen_clock):
    page = Page(qr_code(manager_client=manager_client, issue=issue))

    box = next(e for e in page.elements if "data-countdown" in e.attrs)
    assert page.by_id("countdown").tag == "span"
    note = page.by_id(box.attrs["data-expired-note"])
    assert note is not None and "hidden" in note.attrs and note.attrs.get("role") == "alert"
    assert page.by_id(box.attrs["data-expired-target"]).attrs["id"] == "challenge"
    assert "The QR code has expired. Click Refresh and scan the new one." in page.body
    refresh = [f for f in page.all("form") if "data-refresh" in f.attrs]
    assert [f.attrs["action"] for f in refresh] == [reverse("registration:challenge")]
    scripts = {s.attrs["src"].rsplit("/", 1)[-1] for s in page.all("script")}
    assert {"countdown.js", "refresh.js"} <= scripts


def test_without_a_qr_code_refresh_is_offered_in_place_too(manager_client, issue, frozen_clock):
    page = Page(
        expired_qr_code(manager_client=manager_client, issue=issue, frozen_clock=frozen_clock)
    )

    assert page.by_id("challenge") is None
    section = page.by_id("no-challenge")
    assert section is not None
    assert [f for f in page.all("form") if "data-refresh" in f.attrs]
    assert page.by_id("refresh").tag == "button"


def test_the_phone_page_counts_down_and_says_when_the_code_expired(client, issue, frozen_clock):
    page = Page(phone_code(client=client, issue=issue))

    code = page.by_id("verification-code")
    assert code is not None
    box = next(e for e in page.elements if "data-countdown" in e.attrs)
    assert box.attrs["data-expired-target"] == "verification-code"
    note = page.by_id(box.attrs["data-expired-note"])
    assert note is not None and "hidden" in note.attrs
    assert "This code has expired." in page.body
    assert page.by_id("countdown").tag == "span"
    assert any(s.attrs["src"].endswith("/countdown.js") for s in page.all("script"))
    viewport = next(m for m in page.all("meta") if m.attrs.get("name") == "viewport")
    assert "width=device-width" in viewport.attrs["content"]


def test_the_restart_reminder_is_a_modal_alert_dialog(manager_client, issue, frozen_clock):
    page = Page(restart_reminder(manager_client=manager_client, issue=issue))

    dialog = page.by_id("restart-reminder")
    assert dialog.attrs["role"] == "alertdialog"
    assert dialog.attrs["aria-modal"] == "true"
    assert page.by_id(dialog.attrs["aria-labelledby"]) is not None
    assert page.by_id(dialog.attrs["aria-describedby"]) is not None
    assert page.by_id("authenticate").tag == "a"
    assert any(s.attrs["src"].endswith("/reminder.js") for s in page.all("script"))


def test_the_django_admin_reminder_brings_its_script(django_user_model, issue, frozen_clock):
    user = django_user_model.objects.create_user("ops", password="pw-ops-12345", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="manage_registration"))
    admin = Client()
    admin.force_login(user)
    restart_reminder(manager_client=admin, issue=issue)

    page = Page(get_ok(admin, reverse("admin:index")))

    assert page.by_id("restart-reminder").attrs["role"] == "alertdialog"
    script = next(s for s in page.all("script") if s.attrs.get("src", "").endswith("/reminder.js"))
    assert finders.find(script.attrs["src"].removeprefix(settings.STATIC_URL))


def test_the_console_layout_names_where_the_admin_is(manager_client, frozen_clock):
    body = get_ok(manager_client, reverse("registration:version"))
    page = Page(body)

    nav = page.all("nav")
    assert len(nav) == 1 and nav[0].attrs.get("aria-label")
    assert re.search(r"System Management</span>\s*<span[^>]*>›</span>\s*<span", body)
    assert "Registration Management" in body
    current = [a for a in page.all("a") if a.attrs.get("aria-current") == "page"]
    assert [a.attrs["href"] for a in current] == [reverse("registration:version")]
    assert page.by_id("content").tag == "main"
    assert any(a.attrs["href"] == "#content" for a in page.all("a"))


def test_the_version_page_shows_what_goes_into_a_license_request(manager_client, frozen_clock):
    body = get_ok(manager_client, reverse("registration:version"))

    for element_id, value in [
        ("app-name", "ReportServer"),
        ("minor-version", "11.0"),
        ("build-version", "11.0.20"),
        ("build-date", "2024/02/01"),
        ("project-content", "reports"),
    ]:
        assert f'id="{element_id}">{value}<' in body, element_id
    assert "System Management" in body and "Registration Management" in body


# --- With JavaScript off ------------------------------------------------------------


def test_refresh_as_a_plain_form_post_shows_a_new_qr_code(csrf_client, issue, frozen_clock):
    old = open_challenge(issue)
    body = csrf_client.get(REGISTRATION).content.decode()
    form = re.search(
        r'<form method="post" action="([^"]+)" data-refresh[^>]*>.*?'
        r'name="csrfmiddlewaretoken" value="([^"]+)"',
        body,
        re.S,
    )
    assert form, "the Refresh form is missing"

    response = csrf_client.post(form[1], {"csrfmiddlewaretoken": form[2]})

    assert response.status_code == 302 and response["Location"] == REGISTRATION
    new = QrChallenge.objects.get(state=ChallengeState.OPEN)
    assert new.pk != old.pk
    page = csrf_client.get(REGISTRATION).content.decode()
    assert f'<strong id="challenge-tag">{new.tag}</strong>' in page


# --- The static files themselves ----------------------------------------------------


@pytest.mark.parametrize("path", sorted(STATIC_DIR.glob("*.css")), ids=lambda p: p.name)
def test_stylesheets_load_nothing_from_elsewhere(path):
    text = path.read_text()
    assert "@import" not in text and "@font-face" not in text
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", text)


@pytest.mark.parametrize("path", sorted(STATIC_DIR.glob("*.js")), ids=lambda p: p.name)
def test_scripts_evaluate_no_strings(path):
    # script-src 'self' without 'unsafe-eval': eval and string timers would be blocked.
    text = path.read_text()
    assert not re.search(r"\beval\(|new Function\(|setTimeout\(\s*['\"]", text)
    assert "http://" not in text and "https://" not in text


def test_focus_is_visible_on_every_kind_of_control():
    css = (STATIC_DIR / "site.css").read_text()
    rule = re.search(r":is\(([^)]*)\):focus-visible\s*\{([^}]*)\}", css)
    assert rule, "no shared :focus-visible rule"
    kinds = {k.strip() for k in rule[1].split(",")}
    assert {"button", ".button", "a", "input", "select", "textarea", "summary"} <= kinds
    assert "outline: 3px solid" in rule[2]
