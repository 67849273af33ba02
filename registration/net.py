"""The client's address, as far as it can be believed, and the rate limits keyed on it
(or on the account a login form names)."""

from __future__ import annotations

import ipaddress
import logging
import unicodedata
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage, is_ratelimited
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# What a cache that cannot be reached raises: Django's RedisCache lets redis-py's
# ConnectionError and TimeoutError through; other backends raise socket errors.
CACHE_ERRORS = (RedisError, OSError)


class RateLimitUnavailable(Exception):
    """The rate-limit counter cannot be read or written (the cache is down)."""


def parse_address(text: str) -> IPAddress | None:
    """Return text as an IP address (a port or brackets removed, IPv4-mapped IPv6 as
    IPv4), or None when it is not one."""
    text = text.strip()
    if text.startswith("["):  # [v6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=8)
def _proxy_networks(entries: frozenset[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _is_trusted_proxy(address: IPAddress) -> bool:
    return any(
        address in network for network in _proxy_networks(frozenset(settings.TRUSTED_PROXIES))
    )


def client_ip(request: HttpRequest) -> IPAddress | None:
    """Return REMOTE_ADDR, or the first untrusted hop of X-Forwarded-For behind a
    trusted proxy (TRUSTED_PROXIES: addresses or networks). Headers from anyone else are
    ignored, so a client cannot pick its own rate-limit bucket. None: no valid address."""
    remote = parse_address(request.META.get("REMOTE_ADDR", ""))
    if remote is None or not _is_trusted_proxy(remote):
        return remote
    hops = [parse_address(h) for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for hop in reversed(hops):
        if hop is None:
            return remote  # a malformed hop: believe nothing left of it
        if not _is_trusted_proxy(hop):
            return hop
    return remote


def client_address(request: HttpRequest) -> str | None:
    """The client's IP address as text, for the audit log (None when there is none)."""
    address = client_ip(request)
    return str(address) if address is not None else None


def ratelimit_key(group: str, request: HttpRequest) -> str:
    """django-ratelimit key: the believable client address; an IPv6 client by its /64,
    since one host usually holds a whole /64 and could rotate through it."""
    address = client_ip(request)
    if address is None:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def login_account_key(group: str, request: HttpRequest) -> str:
    """django-ratelimit key: the account a login form names, whatever its spelling: the
    posted username in NFKC (as Django normalises usernames), case-folded, stripped. So
    "Admin ", "admin" and "ＡＤＭＩＮ" share one budget. Empty when none is posted."""
    username = request.POST.get("username", "")
    return unicodedata.normalize("NFKC", username).casefold().strip()


def over_limit(
    request: HttpRequest,
    group: str,
    rate: str,
    key: Callable[[str, HttpRequest], str] = ratelimit_key,
    *,
    increment: bool = True,
) -> bool:
    """Count this request against the budget of its key (by default the client's
    address); tell whether it is over. A request whose key is empty is not counted.
    With increment=False, only tell whether the budget is spent already.

    Fail closed: when the cache cannot count, raise RateLimitUnavailable rather than
    let the request through uncounted (or answer 500).
    """
    value = key(group, request)
    if not value:
        return False
    try:
        if not increment:
            # Spent already: as many counted as the rate allows (the next would be over).
            usage = get_usage(request, group=group, key=lambda _g, _r: value, rate=rate)
            return usage is not None and usage["count"] >= usage["limit"]
        return is_ratelimited(
            request, group=group, key=lambda _group, _request: value, rate=rate, increment=True
        )
    except CACHE_ERRORS as exc:
        log.error("Rate limit %s cannot be checked, refusing the request: %s", group, exc)
        raise RateLimitUnavailable(group) from exc
