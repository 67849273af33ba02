"""Settings for licserver, read from environment variables (see README and docs/)."""

from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from licserver.env import (
    cache_from_url,
    database_from_url,
    envbool,
    envdate,
    envint,
    envkeys,
    envlist,
    envmatch,
    envnetworks,
    envraw,
    envstr,
    keys_from_dir,
)
from licserver.files import private_dir, private_sqlite_file
from registration.protocol.text import CONTROL_CHARACTERS, NODE_NAME_MAX_BYTES
from registration.protocol.verifier import ScryptCost

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("LICSERVER_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = envbool("DEBUG", False)


def _secret_key() -> str:
    """Use SECRET_KEY when set; otherwise keep a generated one under var/ (never in git)."""
    value = envraw("SECRET_KEY")
    if value:
        return value
    path = VAR_DIR / "secret_key"
    private_dir(VAR_DIR)  # 0700: var/ holds secrets (licserver/files.py)
    key = secrets.token_urlsafe(50)
    try:
        # Created with mode 0600 and only if absent: never readable by others, and of two
        # processes starting at once, one writes and both use its key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the other process may still be writing it
            existing = path.read_text(encoding="ascii").strip()
            if existing:
                return existing
            time.sleep(0.01)
        raise ImproperlyConfigured(f"{path} is empty: delete it, or set SECRET_KEY.") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key)
    return key


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

# Which sides of the product this process serves: the customer's console, the vendor's
# verification service (what the phone opens), or both (the embedded default). This is the
# one place that asks: the roles choose the apps, the middleware, the context processors and
# the URLconf below, and no other module looks at them.
LICSERVER_ROLES = set(envlist("LICSERVER_ROLES", ["console", "authority"]))
if not LICSERVER_ROLES or not {"console", "authority"} >= LICSERVER_ROLES:
    raise ImproperlyConfigured("LICSERVER_ROLES must list console and/or authority.")
CONSOLE = "console" in LICSERVER_ROLES
AUTHORITY = "authority" in LICSERVER_ROLES

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Commands both sides need (compile_translations); no models.
    "licserver",
    # Before whitenoise: registration's runserver (the development server as a node)
    # wraps whitenoise's, which wraps staticfiles'.
    *(["registration"] if CONSOLE else []),
    *(["registration.authority"] if AUTHORITY else []),
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "registration.middleware.SecurityHeadersMiddleware",
    # A console node that was not admitted to the cluster answers License Exhausted.
    *(["registration.cluster.admission.AdmissionMiddleware"] if CONSOLE else []),
    # Above everything that may touch the database: an outage answers 503, not 500.
    "registration.dbguard.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = {
    frozenset({"console", "authority"}): "licserver.urls.both",
    frozenset({"console"}): "licserver.urls.console",
    frozenset({"authority"}): "licserver.urls.authority",
}[frozenset(LICSERVER_ROLES)]
WSGI_APPLICATION = "licserver.wsgi.application"


def _template_engine(name: str, context_processors: list[str]) -> dict[str, object]:
    return {
        "NAME": name,
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": context_processors},
    }


TEMPLATES = [
    _template_engine(
        "django",
        [
            "django.template.context_processors.request",
            "django.contrib.auth.context_processors.auth",
            "django.contrib.messages.context_processors.messages",
            "django.template.context_processors.i18n",
            # The console's registration state and restart reminder, on its pages.
            *(["registration.context_processors.console"] if CONSOLE else []),
        ],
    ),
    # The phone page (the vendor's, for phones with no login): none of the console's or the
    # login's context, which it never shows and which cost a third of its time to gather.
    _template_engine(
        "phone",
        [
            "django.template.context_processors.request",
            "django.template.context_processors.i18n",
        ],
    ),
]

DATABASES = {"default": database_from_url(envraw("DATABASE_URL"), VAR_DIR / "db.sqlite3")}
# An SQLite file holds sessions and password hashes: made 0600 before anything connects.
private_sqlite_file(DATABASES["default"])
CACHES = {"default": cache_from_url(envraw("CACHE_URL"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# The vendor's verification service alone has no console: its staff work in Django admin.
LOGIN_REDIRECT_URL = "registration:registration" if CONSOLE else "admin:index"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
# Dates as every page writes them, the Django admin's too: 2024/02/01 (licserver/formats).
FORMAT_MODULE_PATH = ["licserver.formats"]

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(VAR_DIR / "static")))
if STATIC_ROOT.is_relative_to(VAR_DIR):
    private_dir(VAR_DIR)  # not made 0755 on the way to var/static
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# collectstatic writes gzip and Brotli copies beside each file; whitenoise serves them.
# (No manifest: `make run` serves straight from the source folders without collectstatic.)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve static files straight from the app and static/ folders so `make run` needs no
# collectstatic step; production runs collectstatic and gets compressed, cached files.
WHITENOISE_USE_FINDERS = envbool("WHITENOISE_USE_FINDERS", True)

# The admin's Issue license form: Sign signs only a preview made by the same user at most
# this many seconds before (one hour); an older preview is shown again, to check.
ISSUE_PREVIEW_MAX_SECONDS = envint("ISSUE_PREVIEW_MAX_SECONDS", 3600, minimum=60)

# Uploads: a license is at most LICENSE_MAX_BYTES; anything larger is refused before it is
# read whole. Keep request bodies small and never spill uploads to temporary files.
LICENSE_MAX_BYTES = envint("LICENSE_MAX_BYTES", 64 * 1024, minimum=1024, maximum=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 256 * 1024, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = LICENSE_MAX_BYTES + 1
DATA_UPLOAD_MAX_NUMBER_FILES = envint("DATA_UPLOAD_MAX_NUMBER_FILES", 4, minimum=1)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 100
FILE_UPLOAD_HANDLERS = ["registration.uploads.CappedMemoryUploadHandler"]

# --- Security -----------------------------------------------------------------------
HTTPS_ONLY = envbool("HTTPS_ONLY", False)
SECURE_SSL_REDIRECT = HTTPS_ONLY
SESSION_COOKIE_SECURE = HTTPS_ONLY
CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000 if HTTPS_ONLY else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS_ONLY
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if envbool("BEHIND_TLS_PROXY", False) else None
)
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", 8 * 3600, minimum=300)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
# Addresses of reverse proxies whose X-Forwarded-For may be believed; empty means the
# client address is REMOTE_ADDR, whatever headers the client sends.
TRUSTED_PROXIES = envnetworks("TRUSTED_PROXIES")

# --- The installation's own facts (what a license is checked against) ---------------
APP_NAME = envstr("APP_NAME", "ReportServer")
APP_VERSION = envmatch(
    "APP_VERSION", "11.0.20", r"[0-9]{1,4}\.[0-9]{1,4}(\.[0-9]{1,6})?", "a version like 11.0.20"
)
APP_BUILD_DATE = envdate("APP_BUILD_DATE", "2024-02-01")
PROJECT_CONTENT = envstr("PROJECT_CONTENT", "reports")
# Local container authentication exists only in builds made on or after this date.
CONTAINER_AUTH_MIN_BUILD_DATE = envdate("CONTAINER_AUTH_MIN_BUILD_DATE", "2021-10-30")

# --- Keys ---------------------------------------------------------------------------
# Public keys are pinned here by key id; nothing a license or a QR code carries is ever
# used as a key. Given as `kid=base64,kid2=base64`; when unset, the demo keys made by
# `manage.py keygen` under KEYS_DIR are used.
KEYS_DIR = Path(envstr("KEYS_DIR", str(VAR_DIR / "keys")))
LICENSE_PUBLIC_KEYS = envkeys("LICENSE_PUBLIC_KEYS", key_bytes=32) or keys_from_dir(
    KEYS_DIR, ".ed25519.pub", key_bytes=32
)
AUTHORITY_PUBLIC_KEYS = envkeys("AUTHORITY_PUBLIC_KEYS", key_bytes=32) or keys_from_dir(
    KEYS_DIR, ".x25519.pub", key_bytes=32
)
# Key id the console puts into new challenges; empty means the last pinned one by name.
AUTHORITY_KID = envstr("AUTHORITY_KID", "")
if AUTHORITY:
    # Vendor side only: private key files by key id (`kid=/path/key.pem`).
    AUTHORITY_PRIVATE_KEY_FILES = envkeys("AUTHORITY_PRIVATE_KEY_FILES") or keys_from_dir(
        KEYS_DIR, ".x25519.pem", content=False
    )
    LICENSE_SIGNING_KEY_FILES = envkeys("LICENSE_SIGNING_KEY_FILES") or keys_from_dir(
        KEYS_DIR, ".ed25519.pem", content=False
    )
    STRAY_PRIVATE_KEY_IDS: list[str] = []
else:
    # A console needs public keys only. Private keys found on its host are not loaded; their
    # key ids are kept so that a start-up check can say they should not be here.
    STRAY_PRIVATE_KEY_IDS = sorted(
        {
            *envkeys("AUTHORITY_PRIVATE_KEY_FILES"),
            *envkeys("LICENSE_SIGNING_KEY_FILES"),
            *keys_from_dir(KEYS_DIR, ".x25519.pem", content=False),
            *keys_from_dir(KEYS_DIR, ".ed25519.pem", content=False),
        }
    )

# --- Registration rules -------------------------------------------------------------
PORT = envint("PORT", 8000, minimum=1, maximum=65535)
AUTHORITY_BASE_URL = envstr("AUTHORITY_BASE_URL", f"http://127.0.0.1:{PORT}").rstrip("/")
CHALLENGE_TTL_SECONDS = envint("CHALLENGE_TTL_SECONDS", 300, minimum=30, maximum=3600)
# 5 wrong codes lock the console for 15 minutes; each further lock before a success
# doubles, up to LOCKOUT_MAX_MINUTES.
LOCKOUT_MAX_ATTEMPTS = envint("LOCKOUT_MAX_ATTEMPTS", 5, minimum=1, maximum=100)
LOCKOUT_MINUTES = envint("LOCKOUT_MINUTES", 15, minimum=1)
LOCKOUT_MAX_MINUTES = envint("LOCKOUT_MAX_MINUTES", 24 * 60, minimum=1)
# What the console keeps of a challenge's code: an scrypt verifier (protocol/verifier.py).
# Each check costs 16 MiB and about 60 ms on one core with the defaults, so trying all
# 10^6 codes costs about 16 core-hours (docs/protocol.md); only 5 checks per lockout ever
# run. N must be a power of two.
CODE_VERIFIER_SCRYPT_N = envint("CODE_VERIFIER_SCRYPT_N", 2**14, minimum=2**10, maximum=2**20)
CODE_VERIFIER_SCRYPT_R = envint("CODE_VERIFIER_SCRYPT_R", 8, minimum=1, maximum=64)
CODE_VERIFIER_SCRYPT_P = envint("CODE_VERIFIER_SCRYPT_P", 1, minimum=1, maximum=16)
try:
    ScryptCost(CODE_VERIFIER_SCRYPT_N, CODE_VERIFIER_SCRYPT_R, CODE_VERIFIER_SCRYPT_P)
except ValueError as exc:
    raise ImproperlyConfigured(
        f"CODE_VERIFIER_SCRYPT_N/_R/_P: {exc} (the defaults are 16384, 8 and 1)."
    ) from None
# The vendor keeps, per binding, at most this many pending and past chain values (the
# copy check, docs/protocol.md): enough for this many scans between two registrations.
CHAIN_HISTORY_MAX = envint("CHAIN_HISTORY_MAX", 100, minimum=10, maximum=10_000)
# A token carrying a past chain value is "out of date", not a copy, when the console made
# it before the vendor saw that value overtaken, or up to this many seconds after (the two
# clocks may disagree; the token's lifetime bounds the same disagreement). A copy is
# caught at its first scan after that; until then it is refused without a code.
CHAIN_STALE_GRACE_SECONDS = envint(
    "CHAIN_STALE_GRACE_SECONDS", CHALLENGE_TTL_SECONDS, minimum=0, maximum=3600
)
# An installation may release its license for a move to another server this many times
# per license in any 365 days (authority/release.py); beyond that, support staff unbind it.
# 0 turns self-service moves off.
SELF_SERVICE_MOVES_PER_YEAR = envint("SELF_SERVICE_MOVES_PER_YEAR", 2, minimum=0, maximum=100)
# Per client address, django-ratelimit syntax.
RATE_LOGIN = envstr("RATE_LOGIN", "10/m")
RATE_UPLOAD = envstr("RATE_UPLOAD", "20/m")
RATE_CODE = envstr("RATE_CODE", "30/m")
RATE_CHALLENGE = envstr("RATE_CHALLENGE", "30/m")
RATE_PHONE = envstr("RATE_PHONE", "30/m")
# Per account a login form names (the username, case-folded), from every address together:
# one attacker rotating addresses gets 20 guesses an hour at an account, 480 a day, where
# RATE_LOGIN alone would give each address 10 a minute. Per hour, not per minute: a person
# who mistypes a password does not try 20 times in an hour, and 5/m would still allow 7200
# guesses a day. The price: while an attack runs, the account's real owner is refused too,
# each time until the hour's window ends.
RATE_LOGIN_ACCOUNT = envstr("RATE_LOGIN_ACCOUNT", "20/h")
RATELIMIT_USE_CACHE = "default"
RATELIMIT_FAIL_OPEN = False
RATELIMIT_VIEW = "registration.views.errors.ratelimited"
# At most NODE_NAME_MAX_BYTES bytes of UTF-8 (the QR token carries it), never half a character.
NODE_NAME = envmatch(
    "NODE_NAME",
    socket.gethostname(),
    f"[^{CONTROL_CHARACTERS}]+",
    "a name without control or invisible format characters",
)
NODE_NAME = NODE_NAME.encode("utf-8")[:NODE_NAME_MAX_BYTES].decode("utf-8", errors="ignore")
NODE_HEARTBEAT_SECONDS = envint("NODE_HEARTBEAT_SECONDS", 10, minimum=1)
NODE_LEASE_SECONDS = envint("NODE_LEASE_SECONDS", 30, minimum=2)
CLUSTER_MAX_CLOCK_SKEW_SECONDS = envint("CLUSTER_MAX_CLOCK_SKEW_SECONDS", 5, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
# How long a node may show a registration status another node has changed (the shared
# cache is invalidated at once; this bounds a per-process cache).
STATUS_CACHE_SECONDS = envint("STATUS_CACHE_SECONDS", 5, minimum=1)
# Bearer tokens of GET /api/registration and GET /metrics; empty turns the endpoint off
# (401). Give them as *_FILE to read them from a mounted secret.
REGISTRATION_API_TOKEN = envraw("REGISTRATION_API_TOKEN") or ""
METRICS_TOKEN = envraw("METRICS_TOKEN") or ""
# Admins see a warning on the console from this many days before the license's last day.
LICENSE_EXPIRY_WARNING_DAYS = envint("LICENSE_EXPIRY_WARNING_DAYS", 30, minimum=0)
# Where admins send license requests (Version Information > Request a license).
LICENSE_REQUEST_EMAIL = envstr("LICENSE_REQUEST_EMAIL", "business@vendor.example")
