"""The client's address, as far as it can be believed, and the rate limit keyed on it."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# What a cache that cannot be reached raises: Django's RedisCache lets redis-py's
# ConnectionError and TimeoutError through; other backends raise socket errors.
CACHE_ERRORS = (RedisError, OSError)


class RateLimitUnavailable(Exception):
    """The rate-limit counter cannot be read or written (the cache is down)."""


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


def over_limit(request: HttpRequest, group: str, rate: str) -> bool:
    """Count this request against the client's budget; tell whether it is over.

    Fail closed: when the cache cannot count, raise RateLimitUnavailable rather than
    let the request through uncounted (or answer 500).
    """
    try:
        return is_ratelimited(request, group=group, key=ratelimit_key, rate=rate, increment=True)
    except CACHE_ERRORS as exc:
        log.error("Rate limit %s cannot be checked, refusing the request: %s", group, exc)
        raise RateLimitUnavailable(group) from exc
