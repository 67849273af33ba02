"""Typed readers for environment variables.

Each reader raises ImproperlyConfigured with the variable's name when its value is bad,
so a typo in deployment fails at start-up instead of at the first request. A variable
``NAME`` can also be given as ``NAME_FILE``: the path of a file holding the value (for
secrets mounted by an orchestrator).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from datetime import date
from pathlib import Path
from urllib.parse import ParseResult, parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

from registration.protocol.text import KID_PATTERN

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# ASCII digits only: int() alone would also take "1_000" or non-ASCII digits.
_INTEGER = re.compile(r"[+-]?[0-9]+")


def envraw(name: str) -> str | None:
    """Return the raw value of NAME, or the content of the file named by NAME_FILE."""
    value = os.environ.get(name)
    file_path = os.environ.get(f"{name}_FILE")
    if value is not None and file_path is not None:
        raise ImproperlyConfigured(f"Set {name} or {name}_FILE, not both.")
    if file_path is not None:
        try:
            return Path(file_path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {file_path}: {exc}") from exc
    return value


def envstr(name: str, default: str) -> str:
    value = envraw(name)
    return default if value is None or value == "" else value


def envdate(name: str, default: str) -> str:
    """Read a YYYY-MM-DD date (kept as text, as the settings hold it)."""
    value = envstr(name, default).strip()
    try:
        if len(value) != 10:
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a date YYYY-MM-DD, got {value!r}.") from None
    return value


def envmatch(name: str, default: str, pattern: str, what: str) -> str:
    """Read a string that must match pattern whole (what says what it should look like)."""
    value = envstr(name, default).strip()
    if not re.fullmatch(pattern, value):
        raise ImproperlyConfigured(f"{name} must be {what}, got {value!r}.")
    return value


def envnetworks(name: str) -> set[str]:
    """Read a comma-separated list of IP addresses or networks (CIDR)."""
    entries = set(envlist(name, []))
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {entry!r} is not an IP address or network."
            ) from None
    return entries


def envbool(name: str, default: bool) -> bool:
    value = envraw(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of {sorted(_TRUE | _FALSE)}, got {value!r}.")


def envint(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    value = envraw(name)
    if value is None or value == "":
        return default
    if not _INTEGER.fullmatch(value.strip()):
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}.")
    number = int(value.strip())
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {number}.")
    return number


def envlist(name: str, default: list[str]) -> list[str]:
    value = envraw(name)
    if value is None or value.strip() == "":
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def envkeys(name: str, *, key_bytes: int | None = None) -> dict[str, str]:
    """Read ``kid=value,kid2=value`` into a dict; an empty value gives {}.

    With key_bytes, each value must be standard base64 of exactly that many bytes (a raw
    public key), so a mistyped key fails at start-up rather than on the first upload.
    """
    result: dict[str, str] = {}
    for item in envlist(name, []):
        kid, sep, key = item.partition("=")
        kid, key = kid.strip(), key.strip()
        if not sep or not kid or not key:
            raise ImproperlyConfigured(f"{name}: expected kid=value items, got {item!r}.")
        if not KID_PATTERN.fullmatch(kid):
            raise ImproperlyConfigured(f"{name}: key id {kid!r} must match {KID_PATTERN.pattern}.")
        if kid in result:
            raise ImproperlyConfigured(f"{name}: key id {kid!r} appears twice.")
        if key_bytes is not None and len(_base64(name, kid, key)) != key_bytes:
            raise ImproperlyConfigured(f"{name}: key {kid!r} must be {key_bytes} bytes.")
        result[kid] = key
    return result


def _base64(name: str, kid: str, value: str) -> bytes:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ImproperlyConfigured(f"{name}: key {kid!r} is not base64.") from None


def database_from_url(url: str | None, sqlite_path: Path) -> dict:
    """Return a DATABASES['default'] dict: SQLite when url is empty, else postgres://."""
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(sqlite_path),
            # Wait for a concurrent writer instead of failing at once.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    parsed = urlparse(url)
    if parsed.scheme in {"sqlite", "sqlite3"}:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": unquote(parsed.path) or str(sqlite_path),
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    if parsed.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL: unsupported scheme {parsed.scheme!r} (use postgres:// or sqlite://)."
        )
    name = unquote(parsed.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("DATABASE_URL: the database name is missing.")
    port = _port("DATABASE_URL", parsed)
    options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"connect_timeout": 5, **options},
    }


def cache_from_url(url: str | None) -> dict:
    """Return a CACHES['default'] dict: per-process memory when url is empty, else redis://."""
    if not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    parsed = urlparse(url)
    if parsed.scheme not in {"redis", "rediss"}:
        raise ImproperlyConfigured(
            f"CACHE_URL: unsupported scheme {parsed.scheme!r} (use redis://)."
        )
    _port("CACHE_URL", parsed)
    if not re.fullmatch(r"/?[0-9]*", parsed.path):
        raise ImproperlyConfigured(
            f"CACHE_URL: the database must be a number (redis://host:6379/2), got {parsed.path!r}."
        )
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        # Never pickle: a value written into Redis must not run code here (licserver/cache.py).
        "OPTIONS": {
            "socket_connect_timeout": 2,
            "socket_timeout": 2,
            "serializer": "licserver.cache.JSONSerializer",
        },
    }


def _port(name: str, parsed: ParseResult) -> int | None:
    try:
        return parsed.port
    except ValueError:
        raise ImproperlyConfigured(f"{name}: the port is not a number from 0 to 65535.") from None


def keys_from_dir(
    directory: Path, suffix: str, *, content: bool = True, key_bytes: int | None = None
) -> dict[str, str]:
    """Map kid -> file content (or path) for files named ``<kid><suffix>`` in directory.

    With key_bytes, each file must hold base64 of exactly that many bytes, checked as
    strictly as the environment variable form, so a corrupt file stops start-up.
    """
    if not directory.is_dir():
        return {}
    found: dict[str, str] = {}
    for path in sorted(directory.glob(f"*{suffix}")):
        kid = path.name[: -len(suffix)]
        if not content:
            found[kid] = str(path)
            continue
        try:
            value = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ImproperlyConfigured(f"{path}: cannot read the key: {exc}") from None
        if not KID_PATTERN.fullmatch(kid):
            raise ImproperlyConfigured(f"{path}: key id {kid!r} must match {KID_PATTERN.pattern}.")
        if key_bytes is not None and len(_base64(str(path), kid, value)) != key_bytes:
            raise ImproperlyConfigured(f"{path}: the key must be {key_bytes} bytes.")
        found[kid] = value
    return found
