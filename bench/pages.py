"""Rows 3 and 4: the QR page with its image, and the restart reminder on every page."""

from __future__ import annotations

import base64
import dataclasses
import importlib
import re
import sys
import types
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.template.backends.django import DjangoTemplates
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import path, reverse

from bench.common import Row, at_most, compare, ms, ratio_row
from bench.micro import sample_license
from registration.flows.upload import upload_license
from registration.models import MANAGE_PERMISSION, ChallengeState, QrChallenge
from registration.protocol.keys import load_signing_key
from registration.protocol.license import sign_license
from registration.views import console

ROOT = Path(__file__).resolve().parent.parent
PNG_LIMIT = 2560
REMINDER_PROCESSOR = "registration.context_processors.console"


def manager_client() -> Client:
    """A logged-in admin with the Registration Management permission (not a superuser)."""
    user, _ = User.objects.get_or_create(username="bench-manager")
    user.user_permissions.add(Permission.objects.get(codename="manage_registration"))
    client = Client()
    client.force_login(user)
    return client


def install_license(kid: str) -> QrChallenge:
    """Upload a fitting license as an admin would; return the QR challenge it opens."""
    open_now = QrChallenge.objects.filter(state=ChallengeState.OPEN).first()
    if open_now is not None:
        return open_now
    lic = sample_license(kid)
    text = sign_license(lic, load_signing_key(settings.LICENSE_SIGNING_KEY_FILES[kid]), kid)
    result = upload_license(text.encode("ascii"), "container")
    assert result.accepted, result.validation.codes
    assert result.challenge is not None
    return result.challenge


def _render_without_qr_image():
    """A stand-in for the console's render() that uses the page minus the QR <img>."""
    source = (ROOT / "templates/registration/registration.html").read_text(encoding="utf-8")
    # One in the registration panel, one in the release panel; a page shows one of them.
    without, count = re.subn(r'<img id="qr-image"[^>]*>', "", source)
    assert count >= 1, "the Registration page template no longer has a QR image"
    template = engines["django"].from_string(without)  # compiled once, like the original

    def render(request, template_name, context=None, status=None):
        return HttpResponse(template.render(context, request), status=status)

    return render


def qr_page(kid: str, quick: bool) -> Row:
    """The page with its QR image (inside the page, cached) against the same page without."""
    challenge = install_license(kid)
    client = manager_client()
    page_url = reverse("registration:registration")
    page = client.get(page_url).content.decode()
    data_uri = re.search(r'id="qr-image" src="data:image/png;base64,([^"]+)"', page)
    assert data_uri, "the page does not carry the QR image"
    png_size = len(base64.b64decode(data_uri[1]))
    assert challenge.token in page
    real_render, render_without = console.render, _render_without_qr_image()

    def with_image() -> None:
        assert client.get(page_url).status_code == 200

    def without_image() -> None:
        console.render = render_without
        try:
            body = client.get(page_url).content
        finally:
            console.render = real_render
        assert b'id="qr-image"' not in body and challenge.token.encode() in body

    goal = at_most(1.1)
    ratios = compare(with_image, without_image, loops=10 if quick else 30, goal=goal, paired=True)
    return ratio_row(
        "3",
        "QR page with its image vs the same page without it",
        ratios,
        goal,
        [f"with image {ms(ratios.target)} vs without {ms(ratios.baseline)}"],
        also=[(f"PNG {png_size} bytes (goal <= {PNG_LIMIT})", png_size <= PNG_LIMIT)],
    )


# --- Row 4: a bare view rendered with and without the reminder ----------------------

_PAGE = "<p>{% if user.is_authenticated %}{{ user.get_username }}{% endif %}</p>"
_WITH = _PAGE + ('{% if restart_reminder %}{% include "registration/reminder.html" %}{% endif %}')


def _engine(name: str, processors: list[str]) -> DjangoTemplates:
    return DjangoTemplates(
        {
            "NAME": name,
            "DIRS": [ROOT / "templates"],
            "APP_DIRS": True,
            "OPTIONS": {"context_processors": processors},
        }
    )


def _bench_urlconf() -> str:
    """Build a URLconf with the bare views; every view is gated as console pages are."""
    processors = list(settings.TEMPLATES[0]["OPTIONS"]["context_processors"])
    assert REMINDER_PROCESSOR in processors
    with_reminder = _engine("with", processors).from_string(_WITH)
    without = _engine("without", [p for p in processors if p != REMINDER_PROCESSOR])
    bare = without.from_string(_PAGE)

    def gated(view):
        gate = permission_required(MANAGE_PERMISSION, raise_exception=True)
        return login_required(gate(view))

    def reminder_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse(with_reminder.render({}, request))

    def bare_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse(bare.render({}, request))

    module = types.ModuleType("bench_reminder_urls")
    module.urlpatterns = [
        path("with", gated(reminder_view)),
        path("bare", gated(bare_view)),
        path("open/with", reminder_view),
        path("open/bare", bare_view),
    ]
    sys.modules[module.__name__] = module
    return module.__name__


def _queries(client: Client, url: str) -> int:
    client.get(url)  # warm the status cache
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def restart_reminder(quick: bool) -> Row:
    """The reminder check on every page, against a bare view through the same stack."""
    client = manager_client()
    with override_settings(ROOT_URLCONF=_bench_urlconf()):
        gated_with, gated_bare = _queries(client, "/with"), _queries(client, "/bare")
        open_with, open_bare = _queries(client, "/open/with"), _queries(client, "/open/bare")

        def target() -> None:
            client.get("/with")

        def baseline() -> None:
            client.get("/bare")

        goal = at_most(1.03)
        ratios = compare(target, baseline, loops=50 if quick else 150, goal=goal, paired=True)
    extra = gated_with - gated_bare
    return ratio_row(
        "4",
        "restart reminder check on every page",
        ratios,
        goal,
        [
            f"with {ms(ratios.target)} vs bare {ms(ratios.baseline)}; cache "
            f"{settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}",
            f"on a view without the permission check: {open_with} with, {open_bare} bare "
            f"-> {open_with - open_bare} extra",
        ],
        also=[
            (
                f"queries per request: {gated_with} with, {gated_bare} bare (goal 0 extra)",
                extra == 0,
            )
        ],
    )


# --- Row 8: a product page behind @registration_required ------------------------------


def register_installation(kid: str) -> None:
    """Register this console through the real flows: issue, upload, scan, type the code."""
    from registration import clock
    from registration.authority.binding import verify_for_phone
    from registration.authority.registry import record_issued_license
    from registration.flows.code import Outcome, submit_code
    from registration.models import Installation, RegistrationState

    Installation.objects.update(failed_attempts=0, locked_until=None, lock_count=0)
    # Issued now: a later license than any the rows before installed (not "superseded").
    lic = dataclasses.replace(sample_license(kid), issued_at=clock.now().replace(microsecond=0))
    text = sign_license(lic, load_signing_key(settings.LICENSE_SIGNING_KEY_FILES[kid]), kid)
    record_issued_license(lic, text, at=clock.now())
    result = upload_license(text.encode("ascii"), "container")
    assert result.accepted and result.challenge is not None, result.validation.codes
    scan = verify_for_phone(result.challenge.token, now=clock.now())
    assert scan.ok, scan.problems
    assert submit_code(scan.code).outcome == Outcome.ACCEPTED
    assert Installation.objects.get().state == RegistrationState.REGISTERED


def _gate_urlconf() -> str:
    """The product's reports page, and the same view without @registration_required."""
    from django.views.decorators.http import require_GET

    from registration.views import reports

    @require_GET
    @login_required
    def ungated(request: HttpRequest) -> HttpResponse:
        return reports.render(request, "reports/reports.html", {"reports": []})

    module = types.ModuleType("bench_gate_urls")
    product = importlib.import_module(settings.ROOT_URLCONF)  # the pages link to its URLs
    module.urlpatterns = [
        path("gated", reports.reports_page),
        path("ungated", ungated),
        *product.urlpatterns,
    ]
    sys.modules[module.__name__] = module
    return module.__name__


def gated_page(kid: str, quick: bool) -> Row:
    """A page behind @registration_required against the same page without the decorator."""
    register_installation(kid)
    client = manager_client()
    with override_settings(ROOT_URLCONF=_gate_urlconf()):
        gated, ungated = _queries(client, "/gated"), _queries(client, "/ungated")

        def target() -> None:
            assert client.get("/gated").status_code == 200

        def baseline() -> None:
            assert client.get("/ungated").status_code == 200

        goal = at_most(1.03)
        ratios = compare(target, baseline, loops=50 if quick else 150, goal=goal, paired=True)
    extra = gated - ungated
    return ratio_row(
        "8",
        "product page behind @registration_required vs not",
        ratios,
        goal,
        [
            f"gated {ms(ratios.target)} vs ungated {ms(ratios.baseline)}; cache "
            f"{settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}"
        ],
        also=[
            (f"queries per request: {gated} gated, {ungated} ungated (goal 0 extra)", extra == 0)
        ],
    )
