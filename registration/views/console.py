"""The customer's console: System Management > Registration Management.

Thin views: form -> flow -> template. Every view needs login and the permission
registration.manage_registration; state changes are POST only and CSRF-protected.
"""

from __future__ import annotations

import base64
from datetime import date
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
from registration.flows import release as releases
from registration.flows import upload as uploads
from registration.forms import CodeForm, LicenseUploadForm, ReleaseForm, ReplaceLicenseForm
from registration.installation import get_installation
from registration.models import MANAGE_PERMISSION, QrChallenge, RegistrationState
from registration.net import client_address
from registration.protocol.causes import Cause, CauseCode
from registration.protocol.license import fingerprint
from registration.protocol.text import format_date
from registration.protocol.validity import is_expired
from registration.qr import cached_qr_png
from registration.seal import effective_state
from registration.views.errors import rate_limited

# Session keys: the refused upload's causes (its page survives a reload) and the license
# waiting for the admin's confirmation before it ends a live registration.
REFUSED_UPLOAD = "registration:refused_upload"
PENDING_UPLOAD = "registration:pending_upload"


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
    state = effective_state(installation)
    # A registration does not outlive its license, whatever the stored state says.
    license_ran_out = lic is not None and is_expired(lic.expires_at, now)
    context = {
        "installation": installation,
        "license": lic,
        "state": state,
        "states": RegistrationState,
        "locked": locked,
        "license_ran_out": license_ran_out,
        # A live registration (what an upload would end), and the restart reminder's state.
        "registered": state == RegistrationState.REGISTERED and not license_ran_out,
        "restart_expired": state == RegistrationState.EXPIRED_DUE_TO_RESTART
        and not license_ran_out,
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
        "release_form": extra.pop("release_form", None) or ReleaseForm(),
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
    # Back on the page without confirming: the upload that waited is dropped.
    request.session.pop(PENDING_UPLOAD, None)
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
    return _after_upload(
        request,
        form.cleaned_data["license"],
        form.cleaned_data["auth_method"],
        replace_registration=False,
    )


def _after_upload(
    request: HttpRequest, data: bytes, auth_method: str, *, replace_registration: bool
) -> HttpResponse:
    """Run the upload flow and answer with a page whose address survives a reload."""
    result = uploads.upload_license(
        data,
        auth_method,
        actor=request.user,
        client_address=client_address(request),
        replace_registration=replace_registration,
    )
    session = request.session
    session.pop(PENDING_UPLOAD, None)
    outcome = uploads.UploadOutcome
    if result.outcome == outcome.REFUSED:
        # Post/redirect/get: the refusal is shown at an address a reload can ask again.
        session[REFUSED_UPLOAD] = [
            {"code": str(cause.code), "details": list(cause.details)}
            for cause in result.validation.causes
        ]
        return redirect("registration:upload_refused")
    session.pop(REFUSED_UPLOAD, None)
    if result.outcome == outcome.UNCHANGED:
        messages.info(
            request,
            _("This license is already installed and registered. Nothing was changed."),
        )
        return redirect("registration:registration")
    if result.outcome == outcome.RENEWED:
        assert result.installed is not None
        messages.success(
            request,
            _("License renewed: valid through %(date)s")
            % {"date": format_date(result.installed.expires_at)},
        )
        return redirect("registration:registration")
    if result.outcome == outcome.NEEDS_CONFIRMATION:
        lic = result.validation.license
        assert lic is not None
        session[PENDING_UPLOAD] = {
            "text": data.decode("ascii"),
            "auth_method": auth_method,
            "license_id": str(lic.license_id),
            "company": lic.company,
            "project_name": lic.project_name,
            "expires_at": lic.expires_at.isoformat(),
        }
        return redirect("registration:confirm_upload")
    messages.success(request, _("License uploaded. Scan the QR code with your phone."))
    return redirect("registration:registration")


@require_GET
@manager_required
@never_cache
def upload_refused(request: HttpRequest) -> HttpResponse:
    """The refused upload's page: its causes, kept in the session so a reload shows them."""
    try:
        causes = tuple(
            Cause(CauseCode(item["code"]), tuple(str(line) for line in item["details"]))
            for item in request.session.get(REFUSED_UPLOAD) or ()
        )
    except (KeyError, TypeError, ValueError):
        causes = ()
    if not causes:
        return redirect("registration:registration")
    return _page(request, status=422, show_form=True, causes=causes, refused_upload=True)


@require_GET
@manager_required
@never_cache
def confirm_upload(request: HttpRequest) -> HttpResponse:
    """Ask before another license ends a live registration."""
    pending = request.session.get(PENDING_UPLOAD)
    if not isinstance(pending, dict) or "text" not in pending:
        return redirect("registration:registration")
    return _page(
        request,
        pending=pending,
        pending_expires_at=_iso_date(pending.get("expires_at")),
        replace_form=ReplaceLicenseForm(initial={"fingerprint": fingerprint(pending["text"])}),
    )


@require_POST
@manager_required
@rate_limited("upload", "RATE_UPLOAD")
def replace_license(request: HttpRequest) -> HttpResponse:
    """Install the license the admin confirmed, ending the registration until its QR code
    is scanned."""
    pending = request.session.get(PENDING_UPLOAD)
    waiting = isinstance(pending, dict) and "text" in pending
    form = ReplaceLicenseForm(
        request.POST, waiting=fingerprint(pending["text"]) if waiting else None
    )
    if not form.is_valid():
        for error in form.non_field_errors() or form.errors.get("fingerprint", []):
            messages.error(request, error)
        return _page(request, status=409, show_form=True)
    return _after_upload(
        request,
        pending["text"].encode("ascii"),
        str(pending.get("auth_method", "")),
        replace_registration=True,
    )


def _iso_date(value: object) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def _no_qr_code(request: HttpRequest, reason: LookupError) -> HttpResponse:
    """Say why no QR code could be made: no license here, or no vendor key configured."""
    if isinstance(reason, challenges.NoAuthorityKey):
        messages.error(
            request,
            _(
                "No verification service key is configured on this server "
                "(AUTHORITY_PUBLIC_KEYS), so no QR code can be made. Ask its operator."
            ),
        )
        return _page(request, status=409)
    messages.error(request, _("Upload a license first."))
    return _page(request, status=409, show_form=True)


@require_POST
@manager_required
@rate_limited("challenge", "RATE_CHALLENGE")
def refresh_challenge(request: HttpRequest) -> HttpResponse:
    try:
        result = challenges.refresh_challenge(actor=request.user)
    except LookupError as exc:
        return _no_qr_code(request, exc)
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


@require_POST
@manager_required
@rate_limited("challenge", "RATE_CHALLENGE")
def release_license(request: HttpRequest) -> HttpResponse:
    """End the registration here and show the release QR code (Release license)."""
    lic = get_installation().license
    if lic is None:
        messages.error(request, _("Upload a license first."))
        return _page(request, status=409, show_form=True)
    form = ReleaseForm(request.POST, expected=lic.project_name)
    if not form.is_valid():
        return _page(request, status=400, release_form=form)
    try:
        releases.release_registration(actor=request.user)
    except LookupError as exc:  # the license was removed meanwhile, or no vendor key
        return _no_qr_code(request, exc)
    messages.success(
        request,
        _(
            "The registration on this server has ended. Scan the release QR code with your "
            "phone to free the license for the new server."
        ),
    )
    return redirect("registration:registration")
