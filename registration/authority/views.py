"""The vendor's verification service: the page a phone opens from the QR code."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from registration import clock
from registration.authority.binding import verify_for_phone
from registration.net import client_address
from registration.views.errors import rate_limited


@require_GET
@never_cache
@rate_limited("phone", "RATE_PHONE")
def verify(request: HttpRequest, token: str) -> HttpResponse:
    """Show the 6-digit code for a scanned challenge, or why there is none (no login)."""
    # The vendor server's own clock: the console enforces a challenge's expiry by its
    # database's clock when the code is typed, so this check only spares the phone a code
    # that would be refused, and a database round trip per scan is not worth that.
    now = clock.wall_now()
    result = verify_for_phone(token, now=now, client_address=client_address(request))
    context = {
        "result": result,
        "challenge": result.challenge,
        "seconds_left": (
            max(int((result.challenge.expires_at - now).total_seconds()), 0)
            if result.challenge
            else 0
        ),
    }
    # The "phone" template engine (settings.TEMPLATES): only the request and the language.
    return render(request, "phone/verify.html", context, status=result.status, using="phone")
