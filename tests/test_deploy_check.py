"""Deploy settings: `check --deploy` passes with the documented production variables.

The checks run in a fresh process with only the variables docs/deploy.md lists, because
settings are read from the environment once, at import.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from registration.protocol.keys import generate_key_pair_files

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
HOST = "licserver.example.com"
# Every variable settings read that would change the outcome, so the parent's own
# environment cannot make these runs pass or fail.
_CLEARED = (
    "DEBUG",
    "HTTPS_ONLY",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_PRELOAD",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "BEHIND_TLS_PROXY",
    "DATABASE_URL",
    "CACHE_URL",
    "DJANGO_SETTINGS_MODULE",
)

HEADERS_SCRIPT = """
import json, sys, django
django.setup()
from django.test import Client
client = Client(HTTP_HOST=sys.argv[1])
secure = client.get("/accounts/login/", secure=True)
plain = client.get("/accounts/login/", secure=False)
print(json.dumps({
    "status": secure.status_code,
    "headers": dict(secure.headers),
    "plain_status": plain.status_code,
    "plain_location": plain.headers.get("Location", ""),
    "cookies": {
        name: {"secure": bool(c["secure"]), "httponly": bool(c["httponly"])}
        for name, c in secure.cookies.items()
    },
}))
"""


def _key_file(tmp_path: Path, length: int) -> Path:
    # Varied characters: Django also wants at least 5 distinct ones.
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
    path = tmp_path / f"secret_key_{length}"
    path.write_text((alphabet * 2)[:length] + "\n", encoding="ascii")
    path.chmod(0o600)
    return path


def _env(tmp_path: Path, **variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env["LICSERVER_VAR_DIR"] = str(tmp_path / "var")
    env["DJANGO_SETTINGS_MODULE"] = "licserver.settings"
    env.update(variables)
    return env


def _pinned_keys(tmp_path: Path) -> dict[str, str]:
    """The vendor's public keys, pinned as a customer's console pins them."""
    directory = tmp_path / "vendor-keys"
    if not directory.exists():
        generate_key_pair_files(directory, "prod-1")
    signing = (directory / "prod-1.ed25519.pub").read_text(encoding="ascii").strip()
    authority = (directory / "prod-1.x25519.pub").read_text(encoding="ascii").strip()
    return {
        "LICENSE_PUBLIC_KEYS": f"prod-1={signing}",
        "AUTHORITY_PUBLIC_KEYS": f"prod-1={authority}",
    }


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The production variables docs/deploy.md documents, with a 64-character key."""
    variables = {
        **_pinned_keys(tmp_path),
        "CACHE_URL": "redis://127.0.0.1:6379/0",
        "DEBUG": "false",
        "HTTPS_ONLY": "true",
        "SECURE_HSTS_PRELOAD": "true",
        "SECRET_KEY_FILE": str(_key_file(tmp_path, 64)),
        "ALLOWED_HOSTS": HOST,
        "CSRF_TRUSTED_ORIGINS": f"https://{HOST}",
    }
    variables.update(overrides)
    return _env(tmp_path, **variables)


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_fails_without_pinned_vendor_keys(tmp_path):
    env = production_env(tmp_path, LICENSE_PUBLIC_KEYS="", AUTHORITY_PUBLIC_KEYS="")

    result = check_deploy(env)

    assert result.returncode != 0
    assert "registration.W001" in result.stderr and "registration.W002" in result.stderr


def test_check_deploy_wants_a_shared_cache(tmp_path):
    result = check_deploy(production_env(tmp_path, CACHE_URL=""))

    assert result.returncode != 0
    assert "registration.W004" in result.stderr


def test_check_warns_of_vendor_private_keys_on_a_console_only_server(tmp_path):
    keys = tmp_path / "vendor-keys"
    env = production_env(tmp_path, LICSERVER_ROLES="console")
    env["AUTHORITY_PRIVATE_KEY_FILES"] = f"prod-1={keys / 'prod-1.x25519.pem'}"

    result = check_deploy(env)

    assert result.returncode != 0
    assert "registration.W003" in result.stderr
    assert check_deploy(production_env(tmp_path, LICSERVER_ROLES="console")).returncode == 0


def test_check_refuses_a_verification_address_too_long_for_the_qr(tmp_path):
    env = production_env(tmp_path, AUTHORITY_BASE_URL="https://" + "v" * 120 + ".example.com")

    result = check_deploy(env)

    assert result.returncode != 0
    assert "registration.E001" in result.stderr


def test_check_deploy_passes_with_the_production_variables(tmp_path):
    result = check_deploy(production_env(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_without_them(tmp_path):
    result = check_deploy(_env(tmp_path))

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


@pytest.mark.parametrize(
    ("overrides", "warning"),
    [
        ({"DEBUG": "true"}, "security.W018"),
        ({"HTTPS_ONLY": "false"}, "security.W004"),
        ({"SECURE_HSTS_PRELOAD": "false"}, "security.W021"),
    ],
)
def test_check_deploy_fails_when_one_variable_is_wrong(tmp_path, overrides, warning):
    result = check_deploy(production_env(tmp_path, **overrides))

    assert result.returncode != 0
    assert warning in result.stderr


def test_the_secret_key_comes_from_its_file_and_49_characters_are_too_few(tmp_path):
    # Django wants 50 or more; the same run with 50 passes, so the file is what is read.
    short = check_deploy(production_env(tmp_path, SECRET_KEY_FILE=str(_key_file(tmp_path, 49))))
    enough = check_deploy(production_env(tmp_path, SECRET_KEY_FILE=str(_key_file(tmp_path, 50))))

    assert short.returncode != 0
    assert "security.W009" in short.stderr
    assert enough.returncode == 0, enough.stdout + enough.stderr


def test_secret_key_and_secret_key_file_together_are_refused(tmp_path):
    result = check_deploy(production_env(tmp_path, SECRET_KEY="x" * 60))

    assert result.returncode != 0
    assert "Set SECRET_KEY or SECRET_KEY_FILE, not both." in result.stderr


@pytest.fixture(scope="module")
def production_page(tmp_path_factory) -> dict:
    """Fetch the login page in a process configured with the production variables."""
    tmp_path = tmp_path_factory.mktemp("deploy")
    result = subprocess.run(
        [sys.executable, "-c", HEADERS_SCRIPT, HOST],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_content_security_policy_allows_no_inline_script(production_page):
    assert production_page["status"] == 200
    policy = production_page["headers"]["Content-Security-Policy"]
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in policy.split(";") if part.strip()
    )

    assert directives["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy
    assert "'unsafe-eval'" not in policy
    assert directives["frame-ancestors"] == ["'none'"]


def test_frames_are_denied(production_page):
    assert production_page["headers"]["X-Frame-Options"] == "DENY"


def test_https_only_sends_hsts_and_redirects_plain_http(production_page):
    headers = production_page["headers"]

    assert headers["Strict-Transport-Security"] == ("max-age=31536000; includeSubDomains; preload")
    assert production_page["plain_status"] == 301
    assert production_page["plain_location"] == f"https://{HOST}/accounts/login/"


def test_cookies_are_secure_and_http_only(production_page):
    cookies = production_page["cookies"]

    assert cookies["csrftoken"] == {"secure": True, "httponly": True}


def test_without_https_only_no_hsts_is_sent(client):
    response = client.get("/accounts/login/")

    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response.headers
    assert response.headers["X-Frame-Options"] == "DENY"


# --- Templates: nothing a strict CSP would block, so nothing needs 'unsafe-inline' ----

_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.IGNORECASE | re.DOTALL)
_JS_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)
_STYLE_ATTR = re.compile(r"<[a-z][^>]*\sstyle\s*=", re.IGNORECASE | re.DOTALL)


def _templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*.html") if p.is_file())


def test_the_template_scan_finds_what_it_looks_for():
    # The patterns must catch each form they are meant to refuse.
    assert _SCRIPT.search("<script>alert(1)</script>").group(2)
    assert _HANDLER.search('<button type="button"\n onclick="go()">')
    assert _JS_URL.search('<a href="javascript:go()">')
    assert _STYLE_ATTR.search('<p style="color:red">')
    assert not _HANDLER.search('<a href="/x" aria-current="page">')


def test_templates_have_no_inline_script_or_event_handlers():
    assert _templates(), "no templates found"
    problems = []
    for path in _templates():
        text = path.read_text(encoding="utf-8")
        for attributes, body in _SCRIPT.findall(text):
            if body.strip() or "src=" not in attributes:
                problems.append(f"{path.relative_to(ROOT)}: inline <script> body")
        if _HANDLER.search(text):
            problems.append(f"{path.relative_to(ROOT)}: on* event handler attribute")
        if _JS_URL.search(text):
            problems.append(f"{path.relative_to(ROOT)}: javascript: URL")
        if _STYLE_ATTR.search(text):
            problems.append(f"{path.relative_to(ROOT)}: style attribute (CSP style-src 'self')")

    assert problems == []
