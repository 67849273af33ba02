"""The client's address, as far as it can be believed."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """Return REMOTE_ADDR, or the first untrusted hop of X-Forwarded-For behind a
    trusted proxy. Headers from anyone else are ignored, so a client cannot pick its
    own rate-limit bucket."""
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    if remote not in settings.TRUSTED_PROXIES:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if hop not in settings.TRUSTED_PROXIES:
            return hop
    return remote


def ratelimit_key(group: str, request: HttpRequest) -> str:
    """django-ratelimit key: the believable client address."""
    return client_address(request)
