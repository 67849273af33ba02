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

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlencode, urlparse, urlunparse
from urllib.request import HTTPCookieProcessor, Request, build_opener

import psycopg
import pytest

from registration.challenge import code_for, decode_token
from tests.conftest import KID, needs_postgres

pytestmark = [pytest.mark.processes, pytest.mark.postgres, needs_postgres]

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
ADMIN, PASSWORD = "kill-admin", "pw-kill-admin-1"


def wait_for(check: Callable[[], object], what: str, timeout: float = 20.0) -> object:
    """Poll check until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


@dataclass
class Database:
    url: str

    def query(self, sql: str, *params: object) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def facts(self) -> dict[str, object]:
        """Everything a code submission may change, read straight from the tables."""
        installation = self.query(
            "SELECT state, registered_at, failed_attempts, lock_count, locked_until, version "
            "FROM registration_installation"
        )
        return {
            "installation": installation,
            "challenges": self.query(
                "SELECT id, state, closed_at FROM registration_challenge ORDER BY id"
            ),
            "bindings": self.query(
                "SELECT id, state, installation_id, last_verified, unbound_at "
                "FROM registration_binding ORDER BY id"
            ),
            "audit": self.query("SELECT id, action FROM registration_auditevent ORDER BY id"),
        }


@dataclass
class Server:
    """One gunicorn node in its own process group; SIGKILL takes master and workers."""

    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = dict(self.env, PORT=str(self.port), AUTHORITY_BASE_URL=self.base)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(GUNICORN), "-c", "gunicorn.conf.py", "licserver.wsgi"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                return Browser(self.base).request("/healthz")[0] == 200
            except OSError:
                return False

        wait_for(ready, "the server to answer", timeout=30)

    def kill(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@dataclass
class Browser:
    base: str
    jar: CookieJar = field(default_factory=CookieJar)

    def request(self, path: str, data: bytes | None = None, headers=None) -> tuple[int, str]:
        """GET (or POST data), following redirects; return the final status and body."""
        opener = build_opener(HTTPCookieProcessor(self.jar))
        url = path if path.startswith("http") else self.base + path
        try:
            with opener.open(Request(url, data=data, headers=headers or {}), timeout=30) as r:
                return r.status, r.read().decode()
        except HTTPError as error:
            return error.code, error.read().decode()

    def post(self, path: str, fields: dict[str, str]) -> tuple[int, str]:
        token = next(c.value for c in self.jar if c.name == "csrftoken")
        body = urlencode({"csrfmiddlewaretoken": token, **fields}).encode()
        return self.request(path, body, {"Content-Type": "application/x-www-form-urlencoded"})

    def login(self) -> None:
        self.request("/accounts/login/")
        status, body = self.post("/accounts/login/", {"username": ADMIN, "password": PASSWORD})
        assert status == 200 and "Log out" in body, body[:500]


@pytest.fixture
def env(key_dir, tmp_path) -> Iterator[tuple[dict[str, str], Database]]:
    """A fresh, migrated PostgreSQL database with an admin; dropped at the end."""
    base_url = os.environ["DATABASE_URL"]
    name = f"{urlparse(base_url).path.lstrip('/')}_kill_{secrets.token_hex(4)}"
    admin_url = with_database(base_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PYTEST_", "LICSERVER_", "CACHE_"))
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="licserver.settings",
        DATABASE_URL=with_database(base_url, name),
        LICSERVER_VAR_DIR=str(tmp_path / "var"),
        SECRET_KEY=secrets.token_urlsafe(40),
        KEYS_DIR=str(key_dir),
        AUTHORITY_KID=KID,
        NODE_NAME="kill-node",
        WEB_CONCURRENCY="1",
        CHALLENGE_TTL_SECONDS="3600",
        RATE_UPLOAD="1000/m",
        RATE_CODE="1000/m",
        RATE_CHALLENGE="1000/m",
        RATE_PHONE="1000/m",
        DJANGO_SUPERUSER_USERNAME=ADMIN,
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        DJANGO_SUPERUSER_EMAIL="admin@example.com",
        PYTHONUNBUFFERED="1",
    )
    try:
        for command in (["migrate", "--noinput", "-v0"], ["createsuperuser", "--noinput"]):
            subprocess.run(
                [str(PYTHON), "manage.py", *command],
                cwd=ROOT,
                env=environment,
                check=True,
                timeout=120,
                capture_output=True,
            )
        yield environment, Database(environment["DATABASE_URL"])
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def servers(env, tmp_path) -> Iterator[Callable[[], Server]]:
    """start() -> a running server on the test database; every one is killed at the end."""
    started: list[Server] = []

    def start() -> Server:
        server = Server(env[0], tmp_path / f"server-{len(started)}.log")
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.kill()


def upload_license(env: dict[str, str], browser: Browser, tmp_path: Path) -> None:
    """Issue a license as the vendor does and upload it on the Registration page."""
    out = tmp_path / "Container.lic"
    subprocess.run(
        [
            str(PYTHON),
            "manage.py",
            "issue_license",
            "--company=Acme Ltd",
            "--project-name=Reports",
            "--app-version=11.0",
            "--contract-date=2026-01-15",
            "--expires=2099-12-31",
            "--max-nodes=1",
            f"--kid={KID}",
            f"--out={out}",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
    )
    boundary = secrets.token_hex(16)
    token = next(c.value for c in browser.jar if c.name == "csrftoken")
    body = b"".join(
        [
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"'
            f"\r\n\r\n{token}\r\n".encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="auth_method"'
            "\r\n\r\ncontainer\r\n".encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="license"; '
            'filename="Container.lic"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + out.read_bytes()
            + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
    )
    status, page = browser.request(
        "/system/registration/upload",
        body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
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
                      AND held.relation = 'registration_challenge'::regclass)
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
    token, key = db.query("SELECT token, key FROM registration_challenge WHERE state = 'open'")[0]
    code = code_for(decode_token(token)[0], bytes(key))
    # The phone scans the QR code: the vendor side binds the license and shows the code.
    status, phone = browser.request(f"/m/{token}")
    assert status == 200 and f">{code}<" in phone, phone[:800]
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
