"""Every URL of the project, and who may use it how.

ROUTES below lists each URL pattern with its access rule and the methods it accepts. A
new URL without an entry fails test_every_url_is_in_the_table, so nobody adds a page
without deciding who may open it. (The admin is Django's; its custom unbind and revoke
views are covered at the end and in test_admin.py.)

Each row is checked for: anonymous sent to log in, the permission (403 without it),
every method it does not take (405, with Allow naming those it does), and CSRF (403
without the token, through with it). The admin and i18n URLs are Django's own.

Access rules:
- MANAGER: login, then the Registration Management permission (403 without it; a
  superuser holds it without being granted it);
- LOGIN: login only (the page itself may then refuse an unregistered project);
- TOKEN: a bearer token, never a session (401 without it);
- PUBLIC: anyone (the phone page, health check, login and logout).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from registration.authority.models import (
    AuditAction,
    AuditEvent,
    Binding,
    BindingState,
    IssuedLicense,
)
from registration.flows.upload import upload_license
from registration.models import ChallengeState, QrChallenge
from tests.conftest import START
from tests.phone_steps import phone_code

pytestmark = pytest.mark.django_db

API_TOKEN = "api-token-for-tests"
METRICS_TOKEN = "metrics-token-for-tests"


class Access(StrEnum):
    MANAGER = "manager"
    LOGIN = "login"
    TOKEN = "token"
    PUBLIC = "public"


@dataclass(frozen=True)
class Route:
    access: Access
    methods: frozenset[str]
    kwargs: dict = field(default_factory=dict)
    # False for token-authenticated endpoints that carry no session (csrf_exempt).
    csrf: bool = True
    token: str = ""


GET, POST = frozenset({"GET"}), frozenset({"POST"})
BOTH = frozenset({"GET", "POST"})

ROUTES: dict[str, Route] = {
    "login": Route(Access.PUBLIC, BOTH),
    "admin-login": Route(Access.PUBLIC, BOTH),
    "logout": Route(Access.PUBLIC, POST),
    "healthz": Route(Access.PUBLIC, GET, csrf=False),
    # A redirect to the Registration page, which asks for the login itself.
    "home": Route(Access.PUBLIC, BOTH),
    "registration:registration": Route(Access.MANAGER, GET),
    "registration:upload": Route(Access.MANAGER, POST),
    "registration:upload_refused": Route(Access.MANAGER, GET),
    "registration:confirm_upload": Route(Access.MANAGER, GET),
    "registration:replace_license": Route(Access.MANAGER, POST),
    "registration:challenge": Route(Access.MANAGER, POST),
    "registration:code": Route(Access.MANAGER, POST),
    "registration:release": Route(Access.MANAGER, POST),
    "registration:version": Route(Access.MANAGER, GET),
    "registration:license_request": Route(Access.MANAGER, BOTH),
    "reports": Route(Access.LOGIN, GET),
    "api-registration": Route(Access.TOKEN, GET, csrf=False, token=API_TOKEN),
    "metrics": Route(Access.TOKEN, GET, csrf=False, token=METRICS_TOKEN),
    "phone:verify": Route(Access.PUBLIC, GET, {"token": "not-a-token"}),
}
SKIPPED_PREFIXES = ("admin/", "i18n/")
# Pages that show what the session holds (a refused upload, an upload waiting for its
# confirmation); without it they send the admin back to the Registration page.
SESSION_RESULT_PAGES = {"registration:upload_refused", "registration:confirm_upload"}


def walk(patterns, prefix: str = "", namespace: str = ""):
    """Yield (route, name) for every URL pattern, following includes."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if route.startswith(SKIPPED_PREFIXES):
                continue
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from walk(pattern.url_patterns, route, inner)
        elif isinstance(pattern, URLPattern):
            yield route, f"{namespace}{pattern.name}" if pattern.name else route


def url(name: str) -> str:
    return reverse(name, kwargs=ROUTES[name].kwargs)


def names(*accesses: Access) -> list[str]:
    return [name for name, route in ROUTES.items() if route.access in accesses]


def call(client: Client, method: str, name: str, **extra):
    return getattr(client, method.lower())(url(name), **extra)


@pytest.fixture(autouse=True)
def tokens_and_rates(settings):
    settings.REGISTRATION_API_TOKEN = API_TOKEN
    settings.METRICS_TOKEN = METRICS_TOKEN
    for rate in ("RATE_UPLOAD", "RATE_CODE", "RATE_CHALLENGE", "RATE_PHONE"):
        setattr(settings, rate, "1000/h")


def test_every_url_is_in_the_table():
    found = {name for _route, name in walk(get_resolver().url_patterns)}

    assert found == set(ROUTES)


# --- Anonymous ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", names(Access.MANAGER, Access.LOGIN))
def test_anonymous_is_sent_to_log_in(client: Client, name):
    for method in sorted(ROUTES[name].methods):
        response = call(client, method, name)

        assert response.status_code == 302, method
        assert response["Location"] == f"{reverse('login')}?next={url(name)}"


@pytest.mark.parametrize("name", names(Access.TOKEN))
def test_bearer_endpoints_answer_401_to_anyone_without_the_token(
    client: Client, manager_client: Client, name
):
    assert call(client, "GET", name).status_code == 401
    # A console session is not a token.
    assert call(manager_client, "GET", name).status_code == 401
    wrong = call(client, "GET", name, HTTP_AUTHORIZATION="Bearer wrong")
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"].startswith("Bearer ")
    right = call(client, "GET", name, HTTP_AUTHORIZATION=f"Bearer {ROUTES[name].token}")
    assert right.status_code == 200


def test_public_urls_need_no_login(client: Client):
    assert call(client, "GET", "login").status_code == 200
    assert call(client, "GET", "healthz").status_code == 200
    phone = call(client, "GET", "phone:verify")
    assert phone.status_code == 400
    assert "Scan the QR code again" in phone.text
    logout = call(client, "POST", "logout")
    assert logout.status_code == 302
    assert logout["Location"] == reverse("login")
    home = call(client, "GET", "home")
    assert home.status_code == 302
    assert home["Location"] == reverse("registration:registration")


# --- Logged in, without the permission ----------------------------------------------------


@pytest.mark.parametrize("name", names(Access.MANAGER))
def test_staff_without_the_permission_gets_403(staff_client: Client, name):
    for method in sorted(ROUTES[name].methods):
        response = call(staff_client, method, name)

        assert response.status_code == 403, method
        assert "Permission denied" in response.text


def test_reports_need_only_a_login_then_a_registered_project(staff_client: Client):
    response = call(staff_client, "GET", "reports")

    # Logged in, so no login redirect: the registration gate answers instead.
    assert response.status_code == 403
    assert "Permission denied" not in response.text


@pytest.mark.parametrize("persona", ["manager_client", "admin_client"])
def test_the_permission_opens_the_manager_pages(request, persona):
    """Open every manager URL as a manager, and as a superuser never granted the permission."""
    client: Client = request.getfixturevalue(persona)
    for name in names(Access.MANAGER):
        if name in SESSION_RESULT_PAGES:
            # Nothing in the session to show: back to the Registration page, not the login.
            response = call(client, "GET", name)
            assert response.status_code == 302, name
            assert response["Location"] == reverse("registration:registration"), name
        elif "GET" in ROUTES[name].methods:
            assert call(client, "GET", name).status_code == 200, name
        else:
            # An empty form: the view itself answers (it refuses the form, or has nothing
            # to do), not the login, the permission or the method check.
            response = call(client, "POST", name)
            assert response.status_code not in (302, 401, 403, 405, 500), name


def test_a_superuser_gets_past_the_permission_to_the_form(admin_client: Client):
    response = call(admin_client, "POST", "registration:code", data={"code": "12a456"})

    assert response.status_code == 400
    assert "Permission denied" not in response.text


# --- Methods ------------------------------------------------------------------------------


def allowed(response) -> set[str]:
    """The methods a 405 names, without the HEAD and OPTIONS that Django adds itself."""
    return set(response["Allow"].split(", ")) - {"HEAD", "OPTIONS"}


@pytest.mark.parametrize("name", list(ROUTES))
def test_a_method_the_url_does_not_take_is_405(manager_client: Client, name):
    # A manager passes every access check here, so only the method decides.
    route = ROUTES[name]
    refused = {"GET", "POST"} - route.methods
    if route.access == Access.TOKEN:
        refused |= {"PUT", "DELETE"}
    for method in sorted(refused):
        response = call(manager_client, method, name)

        assert response.status_code == 405, method
        assert allowed(response) == route.methods


def test_get_on_every_state_changing_url_is_405(manager_client: Client):
    writes = [name for name, route in ROUTES.items() if route.methods == POST]

    assert writes == [
        "logout",
        "registration:upload",
        "registration:replace_license",
        "registration:challenge",
        "registration:code",
        "registration:release",
    ]
    for name in writes:
        response = call(manager_client, "GET", name)
        assert response.status_code == 405, name
        assert allowed(response) == {"POST"}, name


# --- CSRF -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n, r in ROUTES.items() if r.csrf and "POST" in r.methods])
def test_post_without_a_csrf_token_is_403(csrf_client: Client, name):
    response = call(csrf_client, "POST", name, data={"code": "123456"})

    assert response.status_code == 403
    assert "CSRF" in response.text


@pytest.mark.parametrize("name", [n for n, r in ROUTES.items() if r.csrf and "POST" in r.methods])
def test_a_csrf_token_lets_the_same_post_through(csrf_client: Client, name):
    """Send the token a console page's form carries: the view answers, not the CSRF check."""
    page = call(csrf_client, "GET", "registration:license_request")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)

    response = call(csrf_client, "POST", name, data={"csrfmiddlewaretoken": token})

    assert response.status_code != 403
    assert "CSRF" not in response.text


def test_a_csrf_token_lets_an_upload_through(csrf_client: Client, frozen_clock, issue):
    """Upload a license with the token from the Registration page's cookie: it is stored."""
    page = call(csrf_client, "GET", "registration:registration")
    token = page.cookies["csrftoken"].value
    _, text = issue()

    response = call(
        csrf_client,
        "POST",
        "registration:upload",
        data={
            "auth_method": "container",
            "license": SimpleUploadedFile("Container.lic", text.encode()),
            "csrfmiddlewaretoken": token,
        },
    )

    assert response.status_code == 302
    assert response["Location"] == url("registration:registration")
    assert QrChallenge.objects.filter(state=ChallengeState.OPEN).exists()


@pytest.mark.parametrize("name", [n for n, r in ROUTES.items() if not r.csrf])
def test_token_endpoints_are_csrf_exempt_and_read_only(csrf_client: Client, name):
    assert call(csrf_client, "POST", name).status_code == 405


# --- Support staff: unbind and revoke (see also test_admin.py) --------------------------------


def unbind_url(binding: Binding) -> str:
    return reverse("admin:authority_binding_unbind", args=[binding.pk])


def revoke_url(issued: IssuedLicense) -> str:
    return reverse("admin:authority_issuedlicense_revoke", args=[issued.pk])


def bind(issue, **fields) -> Binding:
    """Issue a license, upload it here and let the phone page bind it."""
    lic, text = issue(**fields)
    result = upload_license(text.encode(), "container")
    assert result.accepted, result.validation.codes
    phone_code(result.challenge)
    return Binding.objects.get(license__license_id=lic.license_id)


@pytest.fixture
def viewer(django_user_model) -> Client:
    """Staff who may look at bindings and licenses but hold no unbind or revoke right."""
    user = django_user_model.objects.create_user("viewer", password="pw-viewer-1", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_binding", "view_issuedlicense"])
    )
    client = Client()
    client.force_login(user)
    return client


def test_seeing_bindings_is_not_the_right_to_unbind_or_revoke(viewer, issue, frozen_clock):
    binding = bind(issue)
    assert viewer.get(reverse("admin:authority_binding_changelist")).status_code == 200

    for target in (unbind_url(binding), revoke_url(binding.license)):
        assert viewer.get(target).status_code == 403, target
        assert viewer.post(target, {"reason": "moved"}).status_code == 403, target

    binding.refresh_from_db()
    binding.license.refresh_from_db()
    assert binding.state == BindingState.ACTIVE
    assert binding.license.revoked_at is None
    assert not AuditEvent.objects.filter(action__in=[AuditAction.UNBIND, AuditAction.REVOKE])


def test_every_unbind_writes_its_own_audit_entry(admin_client, admin_user, issue, frozen_clock):
    # Each issued later than the one before: an upload never goes back to an older license.
    bindings = [bind(issue, issued_at=START + timedelta(seconds=n - 3)) for n in range(3)]

    for n, binding in enumerate(bindings):
        response = admin_client.post(unbind_url(binding), {"reason": f"move {n}"})
        assert response.status_code == 302

    entries = AuditEvent.objects.filter(action=AuditAction.UNBIND).order_by("id")
    assert [(e.license_id, e.actor, e.detail["reason"]) for e in entries] == [
        (b.license.license_id, admin_user, f"move {n}") for n, b in enumerate(bindings)
    ]
    assert not Binding.objects.filter(state=BindingState.ACTIVE).exists()
