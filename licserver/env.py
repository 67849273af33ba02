"""Typed readers for environment variables.

Each reader raises ImproperlyConfigured with the variable's name when its value is bad,
so a typo in deployment fails at start-up instead of at the first request. A variable
``NAME`` can also be given as ``NAME_FILE``: the path of a file holding the value (for
secrets mounted by an orchestrator).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


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
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}.") from None
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


def envkeys(name: str) -> dict[str, str]:
    """Read ``kid=base64key,kid2=base64key`` into a dict; an empty value gives {}."""
    result: dict[str, str] = {}
    for item in envlist(name, []):
        kid, sep, key = item.partition("=")
        kid, key = kid.strip(), key.strip()
        if not sep or not kid or not key:
            raise ImproperlyConfigured(f"{name}: expected kid=base64key items, got {item!r}.")
        if kid in result:
            raise ImproperlyConfigured(f"{name}: key id {kid!r} appears twice.")
        result[kid] = key
    return result


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
    options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
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
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }


def keys_from_dir(directory: Path, suffix: str, *, content: bool = True) -> dict[str, str]:
    """Map kid -> file content (or path) for files named ``<kid><suffix>`` in directory."""
    if not directory.is_dir():
        return {}
    found: dict[str, str] = {}
    for path in sorted(directory.glob(f"*{suffix}")):
        kid = path.name[: -len(suffix)]
        found[kid] = path.read_text(encoding="ascii").strip() if content else str(path)
    return found
