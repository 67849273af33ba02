"""The customer's console: System Management > Registration Management.

Thin views: form -> flow -> template. Every view needs login and the permission
registration.manage_registration; state changes are POST only and CSRF-protected.
"""

from __future__ import annotations

import base64
from functools import partial

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from registration import clock
from registration.cluster import leases
from registration.facts import version_information
from registration.flows import challenge as challenges
from registration.flows import code as codes
from registration.flows import upload as uploads
from registration.forms import CodeForm, LicenseUploadForm
from registration.installation import get_installation
from registration.models import MANAGE_PERMISSION, QrChallenge, RegistrationState
from registration.net import client_address
from registration.protocol.validity import is_expired
from registration.qr import cached_qr_png
from registration.seal import effective_state
from registration.views.errors import rate_limited


def manager_required(view):
    """Login first, then the Registration Management permission (403 without it)."""
    return login_required(permission_required(MANAGE_PERMISSION, raise_exception=True)(view))


def _challenge_url(challenge: QrChallenge) -> str:
    return f"{settings.AUTHORITY_BASE_URL}/m/{challenge.token}"


def _qr_data_uri(challenge: QrChallenge) -> str:
    png = cached_qr_png(_challenge_url(challenge))
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _page(request: HttpRequest, status: int = 200, **extra: object) -> HttpResponse:
    """Render the Registration page with the current state and any extra context."""
    installation = get_installation()
    now = clock.now()
    challenge = challenges.open_challenge(now)
    locked = installation.locked_until is not None and now < installation.locked_until
    lic = installation.license
    context = {
        "installation": installation,
        "license": lic,
        "state": effective_state(installation),
        "states": RegistrationState,
        "locked": locked,
        # A registration does not outlive its license, whatever the stored state says.
        "license_ran_out": lic is not None and is_expired(lic.expires_at, now),
        "now": now,
        "challenge": challenge,
        "challenge_url": _challenge_url(challenge) if challenge else "",
        # The QR travels inside the page: no second request, the PNG made once per
        # challenge and cached. A callable, so the template makes it only where shown.
        "qr_data_uri": partial(_qr_data_uri, challenge) if challenge else "",
        "seconds_left": int((challenge.expires_at - now).total_seconds()) if challenge else 0,
        "nodes_used": leases.live_node_count(now),
        "node_leases": leases.live_leases(now).order_by("node_name", "started_at"),
        "upload_form": extra.pop("upload_form", None) or LicenseUploadForm(),
        "code_form": extra.pop("code_form", None) or CodeForm(),
        "lockout_attempts": settings.LOCKOUT_MAX_ATTEMPTS,
        **extra,
    }
    response = render(request, "registration/registration.html", context, status=status)
    # The page may carry a live QR token: never kept by a browser or a proxy, whichever
    # view (page, refused upload, wrong code) rendered it.
    add_never_cache_headers(response)
    return response


@require_GET
@manager_required
@never_cache
def registration_page(request: HttpRequest) -> HttpResponse:
    return _page(request, show_form=request.GET.get("register") == "1")


@require_GET
@manager_required
def version_page(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/version.html", {"info": version_information()})


@require_POST
@manager_required
@rate_limited("upload", "RATE_UPLOAD")
def upload_license(request: HttpRequest) -> HttpResponse:
    # Parse the body first: the upload handler flags a too-large file while parsing.
    data, files = request.POST, request.FILES
    too_large = getattr(request, "upload_too_large", False)
    form = LicenseUploadForm(data, files, too_large=too_large)
    if not form.is_valid():
        status = 413 if too_large or form.has_error("license", "too_large") else 400
        return _page(request, status=status, upload_form=form, show_form=True)
    result = uploads.upload_license(
        form.cleaned_data["license"],
        form.cleaned_data["auth_method"],
        actor=request.user,
        client_address=client_address(request),
    )
    if not result.accepted:
        return _page(
            request, status=422, upload_form=form, show_form=True, causes=result.validation.causes
        )
    messages.success(request, _("License uploaded. Scan the QR code with your phone."))
    return redirect("registration:registration")


@require_POST
@manager_required
@rate_limited("challenge", "RATE_CHALLENGE")
def refresh_challenge(request: HttpRequest) -> HttpResponse:
    try:
        result = challenges.refresh_challenge(actor=request.user)
    except LookupError:
        messages.error(request, _("Upload a license first."))
        return _page(request, status=409, show_form=True)
    if result.causes:
        return _page(request, status=422, causes=result.causes)
    return redirect("registration:registration")


@sensitive_post_parameters("code")
@require_POST
@manager_required
@rate_limited("code", "RATE_CODE")
def submit_code(request: HttpRequest) -> HttpResponse:
    form = CodeForm(request.POST)
    if not form.is_valid():
        return _page(request, status=400, code_form=form)
    result = codes.submit_code(
        form.cleaned_data["code"], actor=request.user, client_address=client_address(request)
    )
    outcome = codes.Outcome
    if result.outcome == outcome.ACCEPTED:
        messages.success(request, _("Registration successful."))
        return redirect("registration:registration")
    if result.outcome == outcome.WRONG:
        left = result.attempts_left
        form.add_error(
            "code",
            ngettext(
                "Incorrect verification code. %(n)s attempt left.",
                "Incorrect verification code. %(n)s attempts left.",
                left,
            )
            % {"n": left},
        )
        return _page(request, status=400, code_form=form)
    if result.outcome in (outcome.LOCKED, outcome.WRONG_AND_LOCKED):
        return _page(request, status=429, code_form=form, lock_message=True)
    if result.outcome == outcome.NO_CHALLENGE:
        # Consumed, superseded or never issued: a code can only answer the open QR code.
        form.add_error(
            "code", _("No QR code is waiting for a code. Click Refresh and scan the new one.")
        )
        return _page(request, status=409, code_form=form)
    form.add_error("code", _("The QR code has expired. Click Refresh and scan the new one."))
    return _page(request, status=410, code_form=form)
