"""What the product puts in its shared cache: JSON only, and signed where it is trusted.

Django's Redis cache unpickles whatever it reads, so write access to Redis would be code
execution on every node. Here:
- JSONSerializer replaces pickle for the whole cache (CACHES OPTIONS "serializer"):
  integers stay plain integers (django-ratelimit's counters use INCR), everything else is
  JSON, bytes as {"$bytes": base64}; a value that is not such JSON reads as a miss;
- signed_get/signed_set store a value the product acts on (the registration status, a QR
  image) as "<MAC>:<JSON>", the MAC being HMAC-SHA256 over the cache key and the JSON
  under a key derived from SECRET_KEY with its own salt, so a forged or moved value is
  ignored and the caller reads the database again. (django.core.signing did the same, but
  derived its key and built a signer on every read, and every console page reads the
  status: bench rows 4 and 8.) A value signed under an earlier SECRET_KEY is a miss.

Redis is still trusted to keep rate-limit counters and to be available; docs/deploy.md
says how to lock it down.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache

from registration.net import CACHE_ERRORS
from registration.protocol.otp import hmac_sha256

log = logging.getLogger(__name__)

SIGNING_SALT = "licserver.cache.signed-value"
# The largest value read back from the cache (a signed QR image is about 4 KB).
CACHE_VALUE_MAX_BYTES = 256 * 1024
_BYTES = "$bytes"
T = TypeVar("T")


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {_BYTES: base64.b64encode(value).decode("ascii")}
    raise TypeError(f"{type(value).__name__} cannot be cached as JSON")


def _decode(value: dict) -> Any:
    if value.keys() == {_BYTES}:
        return base64.b64decode(value[_BYTES], validate=True)
    return value


def _json(value: Any) -> str:
    return json.dumps(value, default=_encode, separators=(",", ":"))


@lru_cache(maxsize=4)
def _mac_key(secret: str) -> bytes:
    # Derived once per secret key, and only for this use (its own salt).
    return hmac_sha256(secret.encode("utf-8"), SIGNING_SALT.encode("ascii"))


def _mac(key: str, body: str) -> str:
    """Return the hex MAC of a cached value: over its cache key too, so it cannot move."""
    message = f"{key}\n{body}".encode()
    return hmac_sha256(_mac_key(settings.SECRET_KEY), message).hex()


class JSONSerializer:
    """A Redis cache serializer that never unpickles."""

    def dumps(self, obj: Any) -> int | bytes:
        if type(obj) is int:  # INCR needs the plain number (as Django's own serializer)
            return obj
        return json.dumps(obj, default=_encode, separators=(",", ":")).encode("utf-8")

    def loads(self, data: bytes) -> Any:
        # Nothing this product caches is near this size; a bigger value is not ours.
        if isinstance(data, bytes | str) and len(data) > CACHE_VALUE_MAX_BYTES:
            log.warning("Ignored a cache value of %d bytes", len(data))
            return None
        try:
            return int(data)
        except ValueError:
            pass
        try:
            return json.loads(data, object_hook=_decode)
        except (ValueError, TypeError, RecursionError):
            # Not what this product writes (or nested to exhaust the parser): treat it as
            # absent rather than trust it.
            log.warning("Ignored a cache value that is not JSON")
            return None


def signed_set(key: str, value: Any, timeout: int, store: BaseCache | None = None) -> None:
    """Cache a JSON-able value, signed and bound to its key; a cache outage is ignored."""
    body = _json(value)
    try:
        (cache if store is None else store).set(key, f"{_mac(key, body)}:{body}", timeout)
    except CACHE_ERRORS as exc:
        log.warning("Cache unavailable, not storing %s: %s", key, exc)


class CacheUnavailable(Exception):
    """The cache could not be read (the caller reads the database instead)."""


_MAC_HEX = 64


def _fetch(key: str, store: BaseCache | None) -> Any | None:
    try:
        return (cache if store is None else store).get(key)
    except CACHE_ERRORS as exc:
        raise CacheUnavailable(str(exc)) from exc


def _verified(key: str, raw: Any) -> Any | None:
    if raw is None:
        return None
    if isinstance(raw, str) and raw[_MAC_HEX : _MAC_HEX + 1] == ":":
        tag, body = raw[:_MAC_HEX], raw[_MAC_HEX + 1 :]
        # signed_set writes ASCII only (json.dumps escapes the rest); anything else, such
        # as a lone surrogate that would not even encode, is not ours.
        if raw.isascii() and hmac.compare_digest(tag, _mac(key, body)):
            # Only a value this product wrote gets this far: it is JSON.
            return json.loads(body, object_hook=_decode)
    log.warning("Ignored a cache value for %s that this product did not sign", key)
    return None


def signed_get(key: str, store: BaseCache | None = None) -> Any | None:
    """Return the value signed_set stored under key, or None when absent or not genuine.

    Raise CacheUnavailable when the cache cannot be reached.
    """
    return _verified(key, _fetch(key, store))


# The last text each key held and what it decoded to, per decoder. The same text checks
# and decodes the same, so while the cache holds it the decoded value is used again: the
# status is read on every console page, and checking and decoding it was most of that
# read's time (bench rows 4 and 8). Keyed by the secret key too, so a new one checks
# afresh.
_last_decoded: dict[tuple[str, Callable[[Any], Any], str], tuple[str, Any]] = {}


def signed_get_decoded(
    key: str, decode: Callable[[Any], T | None], store: BaseCache | None = None
) -> T | None:
    """Return decode(signed_get(key, store)), reusing the last result while the cache
    holds the same text. decode must return an immutable value (every caller shares it)
    and be a module-level function or a classmethod (it is part of the memo's key, so a
    new function on every call would grow the memo on every call).
    """
    raw = _fetch(key, store)
    slot = (key, decode, settings.SECRET_KEY)
    last = _last_decoded.get(slot)
    if last is not None and isinstance(raw, str) and last[0] == raw:
        return last[1]
    value = decode(_verified(key, raw))
    if value is not None and isinstance(raw, str):
        _last_decoded[slot] = (raw, value)
    return value
