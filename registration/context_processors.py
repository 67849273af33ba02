"""Template context every page gets."""

from __future__ import annotations

from django.http import HttpRequest

from registration.models import RegistrationState
from registration.status import cached_snapshot


def registration(request: HttpRequest) -> dict[str, object]:
    """Whether to show the restart reminder (only to users who can manage registration)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    if not user.has_perm("registration.manage_registration"):
        return {}
    status = cached_snapshot()
    return {"restart_reminder": status.state == RegistrationState.EXPIRED_RESTART}
