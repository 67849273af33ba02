"""What the product puts in its shared cache: JSON only, and signed where it is trusted.

Django's Redis cache unpickles whatever it reads, so write access to Redis would be code
execution on every node. Here:
- JSONSerializer replaces pickle for the whole cache (CACHES OPTIONS "serializer"):
  integers stay plain integers (django-ratelimit's counters use INCR), everything else is
  JSON, bytes as {"$bytes": base64}; a value that is not such JSON reads as a miss;
- signed_get/signed_set wrap a value the product acts on (the registration status, a QR
  image) in django.core.signing with its own salt, bound to its cache key, so a forged or
  moved value is ignored and the caller reads the database again.

Redis is still trusted to keep rate-limit counters and to be available; docs/deploy.md
says how to lock it down.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from django.core import signing
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache

from registration.net import CACHE_ERRORS

log = logging.getLogger(__name__)

SIGNING_SALT = "licserver.cache.signed-value"
# The largest value read back from the cache (a signed QR image is about 4 KB).
CACHE_VALUE_MAX_BYTES = 256 * 1024
_BYTES = "$bytes"


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {_BYTES: base64.b64encode(value).decode("ascii")}
    raise TypeError(f"{type(value).__name__} cannot be cached as JSON")


def _decode(value: dict) -> Any:
    if value.keys() == {_BYTES}:
        return base64.b64decode(value[_BYTES], validate=True)
    return value


class _SigningSerializer:
    """signing.dumps's serializer, with bytes as in JSONSerializer."""

    def dumps(self, obj: Any) -> bytes:
        return json.dumps(obj, default=_encode, separators=(",", ":")).encode("latin-1")

    def loads(self, data: bytes) -> Any:
        return json.loads(data.decode("latin-1"), object_hook=_decode)


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
    signed = signing.dumps(
        {"k": key, "v": value}, salt=SIGNING_SALT, serializer=_SigningSerializer, compress=True
    )
    try:
        (cache if store is None else store).set(key, signed, timeout)
    except CACHE_ERRORS as exc:
        log.warning("Cache unavailable, not storing %s: %s", key, exc)


class CacheUnavailable(Exception):
    """The cache could not be read (the caller reads the database instead)."""


def signed_get(key: str, store: BaseCache | None = None) -> Any | None:
    """Return the value signed_set stored under key, or None when absent or not genuine.

    Raise CacheUnavailable when the cache cannot be reached.
    """
    try:
        raw = (cache if store is None else store).get(key)
    except CACHE_ERRORS as exc:
        raise CacheUnavailable(str(exc)) from exc
    if raw is None:
        return None
    try:
        envelope = (
            signing.loads(raw, salt=SIGNING_SALT, serializer=_SigningSerializer)
            if isinstance(raw, str)
            else None
        )
    except (signing.BadSignature, ValueError):
        envelope = None
    if not isinstance(envelope, dict) or envelope.get("k") != key:
        log.warning("Ignored a cache value for %s that this product did not sign", key)
        return None
    return envelope.get("v")
