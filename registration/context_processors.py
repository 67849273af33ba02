"""Template context of the console's pages (settings install this on consoles only)."""

from __future__ import annotations

import logging

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from registration.gate import GateState, current_registration
from registration.models import MANAGE_PERMISSION

log = logging.getLogger(__name__)
# The Registration page and its forms are where the reminder leads: they show the same
# sentence as an alert at the top, with Re-register, instead of a modal that would cover it.
REGISTRATION_VIEWS = {
    "registration:registration",
    "registration:upload",
    "registration:upload_refused",
    "registration:confirm_upload",
    "registration:replace_license",
    "registration:challenge",
    "registration:code",
}


def _restart_reminder(request: HttpRequest) -> bool:
    # The state first: the request's one cached status lookup (shared with the rest of the
    # page through gate's per-request memo), and nothing more on the usual page, where the
    # registration has not expired. Only then the user and the permission.
    try:
        expired = current_registration(request).state == GateState.EXPIRED_DUE_TO_RESTART
    except Exception:  # a cache or database outage must not take every page down
        log.exception("Could not read the registration status for the restart reminder")
        return False
    if not expired:
        return False
    match = getattr(request, "resolver_match", None)
    if match is not None and match.view_name in REGISTRATION_VIEWS:
        return False
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.has_perm(MANAGE_PERMISSION))


def console(request: HttpRequest) -> dict[str, object]:
    """Give templates the console's links, `registration` (the gate's RegistrationValue,
    looked up only when used) and whether to show the restart reminder (only to users who
    can manage registration). Worked out once per request, however many templates render.
    """
    reminder = getattr(request, "_restart_reminder", None)
    if reminder is None:
        reminder = _restart_reminder(request)
        request._restart_reminder = reminder
    return {
        "console_enabled": True,
        "restart_reminder": reminder,
        "registration": SimpleLazyObject(lambda: current_registration(request)),
    }
