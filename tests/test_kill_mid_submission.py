"""A server killed with SIGKILL in the middle of a code submission leaves all or nothing.

The real production command (gunicorn) runs against its own PostgreSQL database. The
test holds an ACCESS EXCLUSIVE lock on the audit table, posts the right code, waits until
the server's transaction has written the challenge and the installation and is blocked
on the audit entry, then kills the server and lets the lock go. The database must then
show none of the success: the installation unregistered, the challenge open, no
"code accepted" entry, the binding as it was. A restarted server accepts the same code,
once. Every wait polls a real condition with a deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import needs_postgres
from tests.phone_steps import shown_code
from tests.processes import (
    Browser,
    Database,
    Server,
    issue_license,
    migrate_with_admin,
    scratch_database,
    server_env,
    start_gunicorn,
    wait_for,
)

pytestmark = [pytest.mark.processes, pytest.mark.postgres, needs_postgres]


class SubmissionDatabase(Database):
    """The tables a code submission writes, read from outside the server."""

    def facts(self) -> dict[str, object]:
        """Everything a code submission may change, read straight from the tables."""
        installation = self.query(
            "SELECT state, registered_at, failed_attempts, lock_count, locked_until, version "
            "FROM registration_installation"
        )
        return {
            "installation": installation,
            "challenges": self.query(
                "SELECT id, state, closed_at FROM registration_qrchallenge ORDER BY id"
            ),
            "bindings": self.query(
                "SELECT id, state, installation_id, last_verified, unbound_at "
                "FROM authority_binding ORDER BY id"
            ),
            "audit": self.query("SELECT id, action FROM registration_auditevent ORDER BY id"),
        }


@pytest.fixture
def env(key_dir, tmp_path) -> Iterator[tuple[dict[str, str], SubmissionDatabase]]:
    """A fresh, migrated PostgreSQL database with an admin; dropped at the end."""
    with scratch_database("kill") as url:
        environment = server_env(
            url,
            key_dir,
            tmp_path / "var",
            NODE_NAME="kill-node",
            WEB_CONCURRENCY="1",
            CHALLENGE_TTL_SECONDS="3600",
        )
        migrate_with_admin(environment)
        yield environment, SubmissionDatabase(url)


@pytest.fixture
def servers(env, tmp_path) -> Iterator[Callable[[], Server]]:
    """start() -> a running server on the test database; every one is killed at the end."""
    started: list[Server] = []

    def start() -> Server:
        server = start_gunicorn(env[0], tmp_path / f"server-{len(started)}.log")
        started.append(server)
        return server

    yield start
    for server in started:
        if server.running:
            server.kill()


def upload_license(env: dict[str, str], browser: Browser, tmp_path: Path) -> None:
    """Issue a license as the vendor does and upload it on the Registration page."""
    license_text = issue_license(env, tmp_path / "Container.lic", max_nodes=1)
    status, page = browser.upload(license_text)
    assert status == 200 and "challenge-link" in page, page[:2000]


def blocked_on_audit(db: Database, locker_pid: int) -> int | None:
    """Return the pid of a backend that has written the challenge and the installation
    in its open transaction and now waits for the audit table, if there is one."""
    rows = db.query(
        """
        SELECT waiting.pid FROM pg_locks waiting
        WHERE NOT waiting.granted AND waiting.pid <> %s
          AND waiting.relation = 'registration_auditevent'::regclass
          AND EXISTS (SELECT 1 FROM pg_locks held WHERE held.pid = waiting.pid
                      AND held.granted AND held.mode = 'RowExclusiveLock'
                      AND held.relation = 'registration_qrchallenge'::regclass)
          AND EXISTS (SELECT 1 FROM pg_locks held WHERE held.pid = waiting.pid
                      AND held.granted AND held.mode = 'RowExclusiveLock'
                      AND held.relation = 'registration_installation'::regclass)
        """,
        locker_pid,
    )
    return rows[0][0] if rows else None


def backend_gone(db: Database, pid: int) -> bool:
    return not db.query("SELECT 1 FROM pg_stat_activity WHERE pid = %s", pid)


def test_sigkill_in_the_middle_of_a_code_submission_commits_nothing(env, servers, tmp_path):
    environment, db = env
    server = servers()
    browser = Browser(server.base)
    browser.login()
    upload_license(environment, browser, tmp_path)
    (token,) = db.query("SELECT token FROM registration_qrchallenge WHERE state = 'open'")[0]
    # The phone scans the QR code: the vendor side binds the license and shows the code.
    status, phone = browser.request(f"/m/{token}")
    code = shown_code(phone)
    assert status == 200 and code, phone[:800]
    browser.request("/system/registration/")  # a fresh CSRF cookie for the code form
    before = db.facts()
    assert before["installation"][0][0] == "unregistered"
    assert [row[1] for row in before["bindings"]] == ["active"]

    answers: list[object] = []
    with psycopg.connect(db.url) as locker:
        locker.execute("LOCK TABLE registration_auditevent IN ACCESS EXCLUSIVE MODE")
        locker_pid = locker.info.backend_pid

        def submit() -> None:
            try:
                answers.append(browser.post("/system/registration/code", {"code": code}))
            except OSError as error:  # the server died under the request
                answers.append(error)

        thread = threading.Thread(target=submit, daemon=True)
        thread.start()
        pid = wait_for(lambda: blocked_on_audit(db, locker_pid), "the submission to block")
        server.kill()
        locker.rollback()  # lets the orphaned backend go on, find its client gone, roll back
    wait_for(lambda: backend_gone(db, pid), "the killed server's backend to end")
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(answers) == 1 and isinstance(answers[0], OSError), answers

    after = db.facts()
    assert after == before
    assert after["installation"][0][0] == "unregistered"
    assert [row[1] for row in after["challenges"]] == ["open"]
    assert "code_accepted" not in [row[1] for row in after["audit"]]

    # A restarted server takes the same code, exactly once.
    server = servers()
    browser.base = server.base
    browser.request("/system/registration/")
    status, page = browser.post("/system/registration/code", {"code": code})
    assert status == 200 and "Registration successful." in page, page[:800]
    status, _page = browser.post("/system/registration/code", {"code": code})
    assert status == 409
    final = db.facts()
    assert final["installation"][0][0] == "registered"
    assert [row[1] for row in final["challenges"]] == ["consumed"]
    assert [row[1] for row in final["audit"]].count("code_accepted") == 1
    assert final["bindings"] == before["bindings"]
