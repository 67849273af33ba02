"""The code lockout lives in the database: it survives restarts and holds on every node.

Each step runs in a new process (`manage.py shell -c`) against one SQLite file, so
nothing a process keeps in memory can carry the count: 4 wrong codes in one process, a
restart of the node in the next, 1 wrong code there locks, and the lock holds in a
process of another node, also after a new QR code. Every process runs with a frozen
clock (the rules depend on time; nothing waits for it).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import KID, START, make_license

pytestmark = [pytest.mark.processes]

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"

# Each process defines these helpers and a step(), then runs RUN.
HELPERS = """
import json, os, uuid
from datetime import datetime
from django.conf import settings
from registration import clock
from registration.authority.registry import record_issued_license
from registration.protocol.license import verify_license
from registration.models import Installation
from registration.cluster import identity, lifecycle
from registration.flows.challenge import open_challenge, refresh_challenge
from registration.flows.code import submit_code
from registration.flows.upload import upload_license
from tests.phone_steps import phone_code, wrong_code

def challenge():
    return open_challenge(clock.now())

def submit(code):
    return str(submit_code(code).outcome)
"""
# Freeze the clock at AT, run the step, print its result as JSON.
RUN = """
with clock.use(clock.FrozenClock(datetime.fromisoformat(os.environ["AT"]))):
    result = step()
print("RESULT " + json.dumps(result))
"""

Node = Callable[..., object]


@pytest.fixture
def node(tmp_path, key_dir, sign) -> Node:
    """node(name, at, step_source) -> the step's result, run in a new process of node name."""
    license_file = tmp_path / "Container.lic"
    license_file.write_text(sign(make_license()), encoding="ascii")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PYTEST_", "LICSERVER_", "DATABASE_", "CACHE_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="licserver.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        LICSERVER_VAR_DIR=str(tmp_path / "var"),
        SECRET_KEY=secrets.token_urlsafe(40),
        KEYS_DIR=str(key_dir),
        AUTHORITY_KID=KID,
        LICENSE_FILE=str(license_file),
    )
    subprocess.run(
        [str(PYTHON), "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )

    def run(name: str, at: datetime, step: str) -> object:
        code = HELPERS + step + RUN
        done = subprocess.run(
            [str(PYTHON), "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env={**env, "NODE_NAME": name, "AT": at.isoformat()},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        assert len(lines) == 1, done.stdout
        return json.loads(lines[0].removeprefix("RESULT "))

    run.db_path = tmp_path / "db.sqlite3"  # type: ignore[attr-defined]
    return run


def stored(db_path: Path) -> tuple:
    """Read the lockout columns straight from the database file, outside Django."""
    with sqlite3.connect(db_path) as conn:
        return conn.execute(
            "SELECT state, failed_attempts, lock_count, locked_until FROM registration_installation"
        ).fetchone()


UPLOAD_AND_FAIL_FOUR = """
def step():
    with open(os.environ["LICENSE_FILE"], "rb") as f:
        text = f.read()
    # The vendor recorded the license it issued, so the phone shows codes for it.
    lic = verify_license(text, settings.LICENSE_PUBLIC_KEYS, settings.LICENSE_MAX_BYTES)
    record_issued_license(lic, text.decode("ascii"), at=clock.now())
    assert upload_license(text, "container").accepted
    wrong = wrong_code(challenge())
    return [submit(wrong) for _ in range(4)]
"""
RESTART_AND_FAIL_ONCE = """
def step():
    state = lifecycle.start_node(identity.NodeIdentity(identity.this_node().name, uuid.uuid4()))
    if open_challenge(clock.now()) is None:
        refresh_challenge()
    return [str(state.life), submit(wrong_code(challenge()))]
"""
RIGHT_CODE = """
def step():
    return submit(phone_code(challenge()))
"""
NEW_QR_THEN_RIGHT_CODE = """
def step():
    result = refresh_challenge()
    assert result.challenge is not None, result.causes
    return submit(phone_code(challenge()))
"""


def test_four_failures_a_restart_and_one_more_lock_on_every_node(node):
    t0 = START
    assert node("node-a", t0, UPLOAD_AND_FAIL_FOUR) == ["wrong"] * 4
    assert stored(node.db_path)[:3] == ("unregistered", 4, 0)

    restarted = node("node-a", t0 + timedelta(minutes=1), RESTART_AND_FAIL_ONCE)

    assert restarted == ["started", "wrong_and_locked"]
    locked_at = t0 + timedelta(minutes=1)
    state, failed, lock_count, locked_until = stored(node.db_path)
    assert (state, failed, lock_count) == ("unregistered", 5, 1)
    assert datetime.fromisoformat(locked_until) == (locked_at + timedelta(minutes=15)).replace(
        tzinfo=None
    )

    # Another node, a new process: the right code is refused while the lock lasts.
    later = locked_at + timedelta(minutes=2)
    assert node("node-b", later, RIGHT_CODE) == "locked"
    # A new QR code does not unlock either.
    assert node("node-b", later, NEW_QR_THEN_RIGHT_CODE) == "locked"
    last_second = locked_at + timedelta(minutes=14, seconds=59)
    assert node("node-a", last_second, NEW_QR_THEN_RIGHT_CODE) == "locked"
    assert stored(node.db_path)[:3] == ("unregistered", 5, 1)

    # The lock ends when the database says it does, in whichever process asks.
    ended = locked_at + timedelta(minutes=15)
    assert node("node-b", ended, NEW_QR_THEN_RIGHT_CODE) == "accepted"
    assert stored(node.db_path)[:3] == ("registered", 0, 0)
