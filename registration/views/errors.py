"""Error pages: a clear message and a 4xx, never a traceback."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _


def ratelimited(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Answer a rate-limited request (django-ratelimit's RATELIMIT_VIEW)."""
    return render(
        request,
        "error.html",
        {
            "title": _("Too many requests"),
            "message": _("Too many requests from your address. Wait a minute and try again."),
        },
        status=429,
    )
