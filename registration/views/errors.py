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


def ratelimited(
    request: HttpRequest, exception: Exception | None = None, *, message: str = ""
) -> HttpResponse:
    """Answer a rate-limited request with 429 (also django-ratelimit's RATELIMIT_VIEW)."""
    return render(
        request,
        "error.html",
        {
            "title": _("Too many requests"),
            "message": message
            or _("Too many requests from your address. Wait a minute and try again."),
        },
        status=429,
    )


def rate_limited(
    group: str,
    setting: str,
    methods: frozenset[str] | None = None,
    key: Callable[[str, HttpRequest], str] = ratelimit_key,
    *,
    counts: Callable[[HttpResponse], bool] | None = None,
    message: Callable[[], str] | None = None,
) -> Callable[[View], View]:
    """Limit a view per client address (or per what key returns, such as the account a
    login form names) to the rate named by settings.<setting>.

    methods, when given, are the only ones counted (a login form is free to look at).
    counts, when given, says which answers count (a failed sign-in, not a good one):
    the request is let through while the budget lasts and counted after the view ran.
    message is what the 429 page says (default: too many requests from your address).

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
            rate = getattr(settings, setting)
            try:
                limited = over_limit(request, group, rate, key, increment=counts is None)
            except RateLimitUnavailable:
                return rate_limit_unavailable(request)
            if limited:
                return ratelimited(request, message=message() if message else "")
            response = view(request, *args, **kwargs)
            if counts is not None and counts(response):
                try:
                    over_limit(request, group, rate, key)
                except RateLimitUnavailable:
                    return rate_limit_unavailable(request)
            return response

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
