"""Error pages and the rate limit: a clear message and a 4xx, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from registration.net import RateLimitUnavailable, over_limit, ratelimit_key

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


def rate_limited(
    group: str,
    setting: str,
    methods: frozenset[str] | None = None,
    key: Callable[[str, HttpRequest], str] = ratelimit_key,
) -> Callable[[View], View]:
    """Limit a view per client address (or per what key returns, such as the account a
    login form names) to the rate named by settings.<setting>.

    methods, when given, are the only ones counted (a login form is free to look at).

    The rate is read on every request, so settings can change it at run time. Over the
    limit the view does not run and the answer is 429: django-ratelimit's own blocking
    raises PermissionDenied, which without its middleware would be a misleading 403.
    When the shared cache is down the view does not run either (fail closed): 503.
    """

    def decorator(view: View) -> View:
        @wraps(view)
        def guarded(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if methods is not None and request.method not in methods:
                return view(request, *args, **kwargs)
            try:
                limited = over_limit(request, group, getattr(settings, setting), key)
            except RateLimitUnavailable:
                return rate_limit_unavailable(request)
            if limited:
                return ratelimited(request)
            return view(request, *args, **kwargs)

        return guarded

    return decorator


def rate_limit_unavailable(request: HttpRequest) -> HttpResponse:
    """Answer 503 while the rate limit cannot be counted (the shared cache is down)."""
    response = render(
        request,
        "error.html",
        {
            "title": _("Service unavailable"),
            "message": _("This page is unavailable for a moment. Try again shortly."),
        },
        status=503,
    )
    response["Retry-After"] = "30"
    return response
