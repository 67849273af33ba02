"""`make run`'s set-up: the demo keys before any check, a demo license the vendor's registry
knows whichever database it runs on, and the admin's password in a box at the end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from registration.authority.models import IssuedLicense
from registration.protocol.license import verify_license
from tests.conftest import make_license

ROOT = Path(__file__).resolve().parent.parent
KEY_WARNINGS = ("every upload will be refused", "no QR code can be made")
# The test run's own settings must not reach the set-up: it gets a fresh var/ and nothing else.
DROPPED = ("DATABASE_URL", "CACHE_", "SECRET_KEY", "LICSERVER_", "DJANGO_", "PYTEST_", "KEYS_DIR")
DROPPED_KEYS = (
    "LICENSE_PUBLIC_KEYS",
    "AUTHORITY_PUBLIC_KEYS",
    "AUTHORITY_PRIVATE_KEY_FILES",
    "LICENSE_SIGNING_KEY_FILES",
    "AUTHORITY_KID",
)


def fresh_env(var: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(DROPPED) and key not in DROPPED_KEYS
    }
    env.update(DJANGO_SETTINGS_MODULE="licserver.settings", LICSERVER_VAR_DIR=str(var))
    return env


def make_run_commands() -> list[list[str]]:
    """The manage.py commands of the Makefile's `run` target, in order, as it runs them."""
    text = (ROOT / "Makefile").read_text()
    body = re.search(r"^run:.*\n((?:\t.*\n)+)", text, re.M).group(1)
    commands = []
    for line in body.splitlines():
        found = re.match(r"\t\$\(BIN\)/python manage\.py (.+)$", line)
        if found:
            commands.append(found.group(1).split())
    return commands


@pytest.fixture
def demo_var(tmp_path, settings):
    """An empty var/ whose keys setup_demo makes, as on a fresh clone."""
    var = tmp_path / "var"
    settings.VAR_DIR = var
    settings.KEYS_DIR = var / "keys"
    settings.LICENSE_PUBLIC_KEYS = settings.AUTHORITY_PUBLIC_KEYS = {}
    settings.AUTHORITY_PRIVATE_KEY_FILES = settings.LICENSE_SIGNING_KEY_FILES = {}
    return var


def setup_demo() -> str:
    out = StringIO()
    call_command("setup_demo", stdout=out, stderr=StringIO())
    return out.getvalue()


def test_make_run_warns_about_no_missing_key_on_a_fresh_clone(tmp_path):
    var = tmp_path / "var"
    env = fresh_env(var)
    commands = make_run_commands()
    assert commands[-1][0] == "runserver"
    # Every step before the server, then the server's own checks (runserver runs them).
    steps = [*commands[:-1], ["check"]]
    output = ""
    for args in steps:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        output += done.stdout + done.stderr

    for warning in KEY_WARNINGS:
        assert warning not in output, output[-3000:]
    assert (var / "keys" / "demo.ed25519.pub").exists()
    assert (var / "Container.lic").exists()


@pytest.mark.django_db
def test_the_admin_password_is_the_last_thing_printed_in_a_box(demo_var, monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)

    out = setup_demo()

    lines = out.rstrip().splitlines()
    box = lines[-6:]
    assert box[0] == box[-1] and re.fullmatch(r"\+-+\+", box[0]), out
    assert all(line.startswith("|  ") and line.endswith("  |") for line in box[1:-1])
    assert len({len(line) for line in box}) == 1  # a closed box, every line as wide
    assert "Username: admin" in box[2]
    password = re.search(r"Password: (\S+)", box[3]).group(1)
    from django.contrib.auth import authenticate

    assert authenticate(username="admin", password=password) is not None
    assert "change it after logging in" in box[4]


@pytest.mark.django_db
def test_a_second_run_says_the_admin_exists_in_the_box(demo_var):
    setup_demo()

    out = setup_demo()

    assert "Password:" not in out
    assert re.search(r"\|  Username: admin \(exists; its password is unchanged\)\s+\|", out)


@pytest.mark.django_db
def test_a_kept_demo_license_is_recorded_in_this_databases_registry(demo_var, sign, key_dir):
    # A first `make run` made the keys and a license, recorded in another database (SQLite);
    # this database (the README's PostgreSQL cluster) has never seen it.
    setup_demo()
    IssuedLicense.objects.all().delete()
    path = demo_var / "Container.lic"
    before = path.read_bytes()

    out = setup_demo()

    assert path.read_bytes() == before  # kept, not replaced
    from django.conf import settings

    lic = verify_license(before, settings.LICENSE_PUBLIC_KEYS, settings.LICENSE_MAX_BYTES)
    row = IssuedLicense.objects.get()
    assert row.license_id == lic.license_id
    assert row.text == before.decode("ascii")
    assert "recorded in this database's vendor registry" in out

    setup_demo()  # and only once
    assert IssuedLicense.objects.count() == 1


@pytest.mark.django_db
def test_a_kept_file_these_keys_did_not_sign_is_left_alone_with_a_reason(demo_var, sign):
    setup_demo()
    IssuedLicense.objects.all().delete()
    path = demo_var / "Container.lic"
    path.write_text(sign(make_license()))  # signed by the test vendor, not the demo keys

    err = StringIO()
    call_command("setup_demo", stdout=StringIO(), stderr=err)

    assert "not a license these keys signed" in err.getvalue()
    assert not IssuedLicense.objects.exists()
