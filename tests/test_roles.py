"""LICSERVER_ROLES: a process serves the console, the verification service, or both.

Settings turn the roles into the installed apps and the URLconf; nothing else asks. URL
tests switch ROOT_URLCONF as settings would; what the apps bring (tables, commands) is
checked in fresh processes, as an operator would see it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as live
from django.test import Client

from registration.flows.upload import upload_license

pytestmark = pytest.mark.django_db

CONSOLE_TABLES = {
    "registration_installation",
    "registration_installedlicense",
    "registration_qrchallenge",
    "registration_nodelease",
    "registration_auditevent",
}
VENDOR_TABLES = {"authority_issuedlicense", "authority_binding", "authority_auditevent"}


@pytest.fixture
def token(frozen_clock, issue) -> str:
    _, text = issue()
    result = upload_license(text.encode("ascii"), "container")
    assert result.accepted
    return result.challenge.token


def test_the_verification_service_alone_has_no_console(settings, token, manager_client):
    # What settings pick for LICSERVER_ROLES=authority: its URLconf, no console context.
    settings.ROOT_URLCONF = "licserver.urls.authority"
    engine = settings.TEMPLATES[0]
    processors = [p for p in engine["OPTIONS"]["context_processors"] if "registration." not in p]
    settings.TEMPLATES = [
        {**engine, "OPTIONS": {**engine["OPTIONS"], "context_processors": processors}},
        *settings.TEMPLATES[1:],
    ]

    assert Client().get(f"/m/{token}").status_code == 200
    assert Client().get("/healthz").status_code == 200
    for path in ("/system/registration/", "/system/version/", "/reports/", "/metrics"):
        assert manager_client.get(path).status_code == 404, path


def test_the_console_alone_has_no_verification_service(settings, token, manager_client):
    settings.ROOT_URLCONF = "licserver.urls.console"

    assert Client().get(f"/m/{token}").status_code == 404
    assert manager_client.get("/system/registration/").status_code == 200


def test_both_roles_by_default(token, manager_client):
    assert live.ROOT_URLCONF == "licserver.urls.both"
    assert Client().get(f"/m/{token}").status_code == 200
    assert manager_client.get("/system/registration/").status_code == 200


def _run(roles: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CACHE"))},
        "LICSERVER_ROLES": roles,
        "LICSERVER_VAR_DIR": str(tmp_path),
        "KEYS_DIR": str(tmp_path / "keys"),
        "SECRET_KEY": "x" * 50,
        "DJANGO_SETTINGS_MODULE": "licserver.settings",
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=live.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _tables_after_migrate(roles: str, tmp_path: Path) -> set[str]:
    done = _run(roles, tmp_path, "manage.py", "migrate", "--noinput", "-v0")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def test_a_console_only_install_has_no_vendor_tables(tmp_path):
    tables = _tables_after_migrate("console", tmp_path)
    assert tables >= CONSOLE_TABLES
    assert not {t for t in tables if t.startswith("authority_")}


def test_a_vendor_only_install_has_no_console_tables(tmp_path):
    tables = _tables_after_migrate("authority", tmp_path)
    assert tables >= VENDOR_TABLES
    assert not {t for t in tables if t.startswith("registration_")}


def _commands_and_settings(roles: str, tmp_path: Path) -> tuple[set[str], dict[str, object]]:
    script = (
        "import django, json; django.setup()\n"
        "from django.conf import settings\n"
        "from django.core.management import get_commands\n"
        "print(json.dumps({'commands': sorted(get_commands()),\n"
        "  'vendor_keys': hasattr(settings, 'LICENSE_SIGNING_KEY_FILES')\n"
        "     or hasattr(settings, 'AUTHORITY_PRIVATE_KEY_FILES'),\n"
        "  'login_redirect': settings.LOGIN_REDIRECT_URL,\n"
        "  'urlconf': settings.ROOT_URLCONF}))"
    )
    done = _run(roles, tmp_path, "-c", script)
    assert done.returncode == 0, done.stderr
    import json

    found = json.loads(done.stdout)
    return set(found.pop("commands")), found


def test_a_console_only_install_has_no_vendor_commands_or_key_settings(tmp_path):
    commands, facts = _commands_and_settings("console", tmp_path)
    assert {"inspect_license", "registration_status", "compile_translations"} <= commands
    assert not {"keygen", "issue_license", "setup_demo"} & commands
    assert facts == {
        "vendor_keys": False,
        "login_redirect": "registration:registration",
        "urlconf": "licserver.urls.console",
    }


def test_a_vendor_only_install_has_no_console_commands(tmp_path):
    commands, facts = _commands_and_settings("authority", tmp_path)
    assert {"keygen", "issue_license", "compile_translations"} <= commands
    assert not {"inspect_license", "registration_status"} & commands
    assert facts == {
        "vendor_keys": True,
        "login_redirect": "admin:index",
        "urlconf": "licserver.urls.authority",
    }


def test_a_vendor_only_install_serves_the_phone_page_and_admin(tmp_path):
    assert _run("authority", tmp_path, "manage.py", "migrate", "--noinput", "-v0").returncode == 0
    script = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "from django.test.utils import setup_test_environment\n"
        "setup_test_environment()\n"
        "c = Client()\n"
        "print(c.get('/healthz').status_code, c.get('/m/AAAA').status_code,\n"
        "      c.get('/admin/login/').status_code, c.get('/no-such-page/').status_code,\n"
        "      'Registration Management' in c.get('/no-such-page/').content.decode())"
    )
    done = _run("authority", tmp_path, "-c", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "400", "200", "404", "False"]
