"""Files that are secrets are owner-only from the moment they exist, whatever the umask.

Under the usual umask 022 a plain mkdir makes 0755 and a plain open 0644: any local user
could read the sessions and password hashes in the SQLite file, the generated secret key,
the vendor's private keys and the Container.lic (whose signature keys the QR codes).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from licserver.files import private_sqlite_file

ROOT = Path(__file__).resolve().parent.parent
DROPPED = ("DATABASE_URL", "CACHE_", "SECRET_KEY", "LICSERVER_", "DJANGO_", "PYTEST_", "KEYS_DIR")
DROPPED_KEYS = (
    "LICENSE_PUBLIC_KEYS",
    "AUTHORITY_PUBLIC_KEYS",
    "AUTHORITY_PRIVATE_KEY_FILES",
    "LICENSE_SIGNING_KEY_FILES",
    "AUTHORITY_KID",
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, for this process and the processes it starts."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_make_run_on_a_fresh_clone_keeps_var_private(tmp_path, umask_022):
    # What `make run` does before serving, in a var/ that does not exist yet: no
    # SECRET_KEY, no DATABASE_URL, no pinned keys.
    var = tmp_path / "var"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(DROPPED) and key not in DROPPED_KEYS
    }
    env.update(DJANGO_SETTINGS_MODULE="licserver.settings", LICSERVER_VAR_DIR=str(var))
    for command in (["migrate", "--noinput", "-v0"], ["setup_demo"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]

    assert mode(var) == 0o700
    assert mode(var / "db.sqlite3") == 0o600
    assert (var / "db.sqlite3").stat().st_size > 0  # the database itself, migrated
    assert mode(var / "secret_key") == 0o600
    assert mode(var / "keys") == 0o700
    assert mode(var / "keys" / "demo.ed25519.pem") == 0o600
    assert mode(var / "keys" / "demo.x25519.pem") == 0o600
    assert mode(var / "Container.lic") == 0o600


def test_the_sqlite_file_is_made_0600_in_a_0700_folder_before_any_connection(tmp_path, umask_022):
    path = tmp_path / "new" / "db.sqlite3"

    private_sqlite_file({"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)})

    assert (mode(path.parent), mode(path), path.stat().st_size) == (0o700, 0o600, 0)


def test_an_existing_sqlite_file_and_other_engines_are_left_alone(tmp_path, umask_022):
    existing = tmp_path / "db.sqlite3"
    existing.write_bytes(b"data")
    existing.chmod(0o640)

    private_sqlite_file({"ENGINE": "django.db.backends.sqlite3", "NAME": str(existing)})
    private_sqlite_file({"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"})
    private_sqlite_file({"ENGINE": "django.db.backends.postgresql", "NAME": str(tmp_path / "x")})

    assert (mode(existing), existing.read_bytes()) == (0o640, b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db.sqlite3"]


@pytest.mark.django_db
def test_issue_license_writes_the_file_0600_in_a_new_0700_folder(tmp_path, frozen_clock, umask_022):
    target = tmp_path / "licenses" / "Container.lic"

    call_command(
        "issue_license",
        "--company=Acme Ltd",
        "--project-name=Reports",
        "--app-version=11.0",
        "--contract-date=2026-01-15",
        "--expires=2027-01-31",
        f"--out={target}",
        stdout=StringIO(),
    )

    assert mode(target.parent) == 0o700
    assert mode(target) == 0o600


def test_keygen_makes_a_new_key_folder_0700_and_private_keys_0600(tmp_path, umask_022):
    directory = tmp_path / "keys"

    call_command("keygen", "--kid=k1", f"--out={directory}", stdout=StringIO())

    assert mode(directory) == 0o700
    assert mode(directory / "k1.ed25519.pem") == 0o600
    assert mode(directory / "k1.x25519.pem") == 0o600


@pytest.mark.django_db
def test_setup_demo_keeps_var_its_keys_and_its_license_private(tmp_path, settings, umask_022):
    var = tmp_path / "var"
    settings.VAR_DIR = var
    settings.KEYS_DIR = var / "keys"
    settings.LICENSE_PUBLIC_KEYS = settings.AUTHORITY_PUBLIC_KEYS = {}
    settings.AUTHORITY_PRIVATE_KEY_FILES = settings.LICENSE_SIGNING_KEY_FILES = {}

    call_command("setup_demo", stdout=StringIO())

    assert mode(var) == 0o700
    assert mode(var / "keys") == 0o700
    assert {p.name: mode(p) for p in (var / "keys").glob("*.pem")} == {
        "demo.ed25519.pem": 0o600,
        "demo.x25519.pem": 0o600,
    }
    assert mode(var / "Container.lic") == 0o600
