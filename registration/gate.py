"""Registration as a gate: how the rest of the product asks whether it is registered.

Python code asks ``current_registration(request)`` and gets an immutable
RegistrationValue. Views are guarded with ``@registration_required`` (function views) or
``RegistrationRequiredMixin`` (class views); both answer 403 with the reason in the
admin's words when the project is not registered. Other services ask
``GET /api/registration`` (see docs/integration.md).

The value is built from the cached status snapshot (one cache lookup, memoized on the
request) and this node's in-memory seat: no database query on a hit. Time is the later of
the database's clock as of the snapshot and this node's clock, so a node's clock set
back cannot keep an expired license going.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

from registration import status
from registration.cluster import admission
from registration.models import MANAGE_PERMISSION
from registration.protocol.text import format_date
from registration.protocol.validity import days_left, is_expired

# Attribute of the request where the value is memoized for the rest of the request.
_REQUEST_ATTRIBUTE = "_registration_value"


class GateState(StrEnum):
    """Stable state codes (also the API's "state"); never rename one, only add."""

    UNREGISTERED = "unregistered"
    REGISTERED = "registered"
    EXPIRED_DUE_TO_RESTART = "expired_due_to_restart"
    LICENSE_EXPIRED = "license_expired"
    LOCKED = "locked"
    NOT_ADMITTED = "not_admitted"


@dataclass(frozen=True)
class RegistrationValue:
    """Whether this project may be used now, and the license facts behind the answer."""

    state: GateState
    license_id: str | None = None
    company: str = ""
    project: str = ""
    # The license's last valid day (UTC); it runs out at the following midnight.
    expires_at: date | None = None
    # Days from today (UTC) to expires_at: 0 on the last day, negative once run out.
    days_left: int | None = None
    nodes_used: int = 0
    max_nodes: int = 0
    # Set only while the lock is active.
    locked_until: datetime | None = None
    # Nodes holding the license's seats, when this node was not admitted.
    seat_holders: tuple[str, ...] = ()

    @property
    def is_registered(self) -> bool:
        return self.state == GateState.REGISTERED

    @property
    def lock_active(self) -> bool:
        """Tell whether code submission is locked (also possible while re-registering)."""
        return self.locked_until is not None

    def message(self) -> str:
        """Say why the project may not be used, in the admin's words ('' when it may)."""
        if self.state == GateState.EXPIRED_DUE_TO_RESTART:
            return _(
                "Your project registration has expired due to project restart. "
                "Enter registration management and authenticate again."
            )
        if self.state == GateState.LICENSE_EXPIRED and self.expires_at is not None:
            return _("License expired on %(date)s") % {"date": format_date(self.expires_at)}
        if self.state == GateState.LOCKED and self.locked_until is not None:
            until = timezone.localtime(self.locked_until).strftime("%H:%M:%S")
            return _("Registration is locked until %(time)s") % {"time": until}
        if self.state == GateState.NOT_ADMITTED:
            if self.seat_holders:
                return _(
                    "License Exhausted: all %(max)s seats of the license are held by "
                    "%(holders)s. This node is not admitted."
                ) % {"max": self.max_nodes, "holders": ", ".join(self.seat_holders)}
            return _(
                "License Exhausted: all seats of the license are held by other nodes. "
                "This node is not admitted."
            )
        if self.state == GateState.REGISTERED:
            return ""
        return _("This project is not registered.")

    def as_json(self) -> dict[str, Any]:
        """Return the API's JSON object (schema in docs/integration.md)."""
        return {
            "state": str(self.state),
            "registered": self.is_registered,
            "license_id": self.license_id,
            "company": self.company,
            "project": self.project,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "days_left": self.days_left,
            "nodes_used": self.nodes_used,
            "max_nodes": self.max_nodes,
            "locked_until": (
                self.locked_until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                if self.locked_until
                else None
            ),
            "message": self.message(),
        }


def evaluate(
    snap: status.StatusSnapshot,
    now: datetime,
    *,
    admitted: bool = True,
    seat_holders: tuple[str, ...] = (),
) -> RegistrationValue:
    """Turn a status snapshot into the gate's answer at time now.

    Precedence, first match wins: a node without a seat is not admitted; a registration
    whose license has run out is license_expired; then expired_due_to_restart; an
    unregistered installation inside a lock is locked; then registered; else
    unregistered.
    """
    expires_at = snap.expires_at
    days = days_left(expires_at, now) if expires_at else None
    lock_active = snap.is_locked(now)
    if not admitted:
        state = GateState.NOT_ADMITTED
    elif (
        expires_at is not None
        and snap.state in (GateState.REGISTERED, GateState.EXPIRED_DUE_TO_RESTART)
        and is_expired(expires_at, now)
    ):
        state = GateState.LICENSE_EXPIRED
    elif snap.state == GateState.EXPIRED_DUE_TO_RESTART:
        state = GateState.EXPIRED_DUE_TO_RESTART
    elif lock_active and snap.state != GateState.REGISTERED:
        state = GateState.LOCKED
    elif snap.state == GateState.REGISTERED:
        state = GateState.REGISTERED
    else:
        state = GateState.UNREGISTERED
    return RegistrationValue(
        state=state,
        license_id=snap.license_id,
        company=snap.company,
        project=snap.project_name,
        expires_at=expires_at,
        days_left=days,
        nodes_used=snap.nodes_used,
        max_nodes=snap.max_nodes,
        locked_until=snap.locked_until if lock_active else None,
        seat_holders=() if admitted else seat_holders,
    )


def current_registration(request: HttpRequest | None = None) -> RegistrationValue:
    """Return this project's registration as seen by this node now.

    Costs at most one cache lookup per request: pass the request and later calls in the
    same request reuse the value. A change on any node deletes the shared cache entry
    (Redis) at once; with the per-process LocMem cache another process may see the old
    value for up to STATUS_CACHE_SECONDS.
    """
    if request is not None:
        memo = getattr(request, _REQUEST_ATTRIBUTE, None)
        if memo is not None:
            return memo
    seat = admission.local
    snap = status.cached_snapshot()
    value = evaluate(
        snap,
        # Never earlier than the database's clock when the snapshot was taken (at most
        # STATUS_CACHE_SECONDS ago): turning a node's clock back never extends a license.
        max(filter(None, (snap.taken_at, status.wall_clock()))),
        admitted=seat.admitted,
        seat_holders=tuple(seat.seat_holders),
    )
    if request is not None:
        setattr(request, _REQUEST_ATTRIBUTE, value)
    return value


# --- Views --------------------------------------------------------------------------


def not_registered_response(request: HttpRequest, value: RegistrationValue) -> HttpResponse:
    """Render the 403 page that says why the project may not be used."""
    user = getattr(request, "user", None)
    may_manage = user is not None and user.has_perm(MANAGE_PERMISSION)
    response = render(
        request,
        "registration/not_registered.html",
        {"value": value, "reason": value.message(), "may_manage": may_manage},
        status=403,
    )
    # The answer changes as soon as someone registers: no browser or proxy may keep it.
    add_never_cache_headers(response)
    return response


def registration_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Let the view run only while the project is registered (403 page otherwise).

    Put it under @login_required, so anonymous users are sent to log in first.
    """

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        value = current_registration(request)
        if not value.is_registered:
            return not_registered_response(request, value)
        return view(request, *args, **kwargs)

    return guarded


class RegistrationRequiredMixin:
    """Class-view twin of @registration_required; list it before the view class.

    Put it after LoginRequiredMixin, so anonymous users are sent to log in first.
    """

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        value = current_registration(request)
        if not value.is_registered:
            return not_registered_response(request, value)
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
