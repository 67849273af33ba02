"""Error pages and the rate limit: a clear message and a 4xx, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django_ratelimit.decorators import ratelimit

from registration.net import ratelimit_key

View = Callable[..., HttpResponse]


def ratelimited(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Answer a rate-limited request with 429 (also django-ratelimit's RATELIMIT_VIEW)."""
    return render(
        request,
        "error.html",
        {
            "title": _("Too many requests"),
            "message": _("Too many requests from your address. Wait a minute and try again."),
        },
        status=429,
    )


def rate_limited(group: str, setting: str) -> Callable[[View], View]:
    """Limit a view per client address to the rate named by settings.<setting>.

    The rate is read on every request, so settings can change it at run time. Over the
    limit the view does not run and the answer is 429: django-ratelimit's own blocking
    raises PermissionDenied, which without its middleware would be a misleading 403.
    """

    def decorator(view: View) -> View:
        @wraps(view)
        def guarded(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if getattr(request, "limited", False):
                return ratelimited(request)
            return view(request, *args, **kwargs)

        return ratelimit(
            key=ratelimit_key,
            rate=lambda _group, _request: getattr(settings, setting),
            group=group,
            block=False,
        )(guarded)

    return decorator
