"""Real server processes for the tests that need them, driven over HTTP like a browser.

One copy of what those tests share: polling with a deadline, loopback ports, a throwaway
PostgreSQL database, the environment a server gets (the test vendor keys pinned), the
production command (`gunicorn -c gunicorn.conf.py licserver.wsgi`) in its own process
group, and a cookie-keeping client that logs in and posts forms with the CSRF token.
What a scenario looks at (its tables, its pages) stays in its own test file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode, urlparse, urlunparse
from urllib.request import HTTPCookieProcessor, Request, build_opener

import psycopg
import pytest

from tests.conftest import KID

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
GUNICORN_COMMAND = [str(GUNICORN), "-c", "gunicorn.conf.py", "licserver.wsgi"]
ADMIN, PASSWORD = "process-admin", "pw-process-admin-1"
START_SECONDS = 30
STOP_SECONDS = 30
# The test run's own settings must not reach a server: it gets exactly what server_env sets.
INHERITED_PREFIXES_DROPPED = ("DJANGO_", "PYTEST_", "LICSERVER_", "CACHE_", "SECRET_KEY")
RELAXED_RATES = {
    # A scenario drives many requests from one address; the limits are tested elsewhere.
    "RATE_UPLOAD": "1000/m",
    "RATE_CODE": "1000/m",
    "RATE_CHALLENGE": "1000/m",
    "RATE_PHONE": "1000/m",
    "RATE_LOGIN_ACCOUNT": "1000/m",
}


def wait_for(check: Callable[[], object], what: str, timeout: float = 20.0) -> object:
    """Poll check until it returns something truthy and return it; fail after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)  # polling a real condition, not waiting out a clock


def free_port() -> int:
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Databases ------------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    """Return the database URL url with its database name replaced by name."""
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


def database_url(db: dict[str, Any], *, host: str = "", port: int = 0) -> str:
    """Build a postgres:// URL from Django's connection settings (host/port override)."""
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    host = host or db["HOST"] or "127.0.0.1"
    port = port or db["PORT"] or 5432
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


@contextlib.contextmanager
def scratch_database(label: str) -> Iterator[str]:
    """Create an empty database beside DATABASE_URL's, yield its URL, drop it at the end.

    Its name starts with DATABASE_URL's database name, so a run's leftovers say whose
    they are.
    """
    base_url = os.environ["DATABASE_URL"]
    name = f"{urlparse(base_url).path.lstrip('/')}_{label}_{secrets.token_hex(4)}"
    admin_url = with_database(base_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(base_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Database:
    """Plain SQL on a server's database, from outside the server."""

    url: str

    def query(self, sql: str, *params: object) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []


# --- The environment and manage.py ----------------------------------------------------


def server_env(database: str, key_dir: Path, var_dir: Path, **overrides: str) -> dict[str, str]:
    """The environment of a server on database: the test vendor keys, an admin, no limits.

    key_dir is the conftest's key directory, pinned by KEYS_DIR and AUTHORITY_KID as an
    operator would pin it. overrides come last (CACHE_URL, NODE_NAME, ...).
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(INHERITED_PREFIXES_DROPPED)
    }
    env.update(
        DJANGO_SETTINGS_MODULE="licserver.settings",
        DATABASE_URL=database,
        LICSERVER_VAR_DIR=str(var_dir),
        SECRET_KEY=secrets.token_urlsafe(40),
        KEYS_DIR=str(key_dir),
        AUTHORITY_KID=KID,
        DJANGO_SUPERUSER_USERNAME=ADMIN,
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        DJANGO_SUPERUSER_EMAIL="admin@example.com",
        PYTHONUNBUFFERED="1",
        **RELAXED_RATES,
    )
    env.update(overrides)
    return env


def closed_port_env(var_dir: Path) -> dict[str, str]:
    """An environment whose database is a PostgreSQL port nothing listens on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CACHE_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="licserver.settings",
        DATABASE_URL="postgres://postgres@127.0.0.1:1/nothing_here?connect_timeout=2",
        LICSERVER_VAR_DIR=str(var_dir),
        SECRET_KEY="x" * 50,
        LOG_LEVEL="CRITICAL",
    )
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run `manage.py args` in env; return its output, or fail the test showing it."""
    done = subprocess.run(
        [str(PYTHON), "manage.py", *args],
        cwd=ROOT,
        env=env,
        timeout=timeout,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        pytest.fail(f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return done.stdout


def migrate_with_admin(env: dict[str, str]) -> None:
    """Migrate the database of env and create its admin (ADMIN, PASSWORD)."""
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "createsuperuser", "--noinput")


def issue_license(env: dict[str, str], out: Path, max_nodes: int) -> bytes:
    """Sign a Container.lic and record it in the vendor's registry, as the vendor does."""
    manage(
        env,
        "issue_license",
        "--company=Acme Ltd",
        "--project-name=Reports",
        "--app-version=11.0",
        "--contract-date=2026-01-15",
        "--expires=2099-12-31",
        f"--max-nodes={max_nodes}",
        f"--kid={KID}",
        f"--out={out}",
        timeout=60,
    )
    return out.read_bytes()


# --- Server processes -----------------------------------------------------------------


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start command in a new session (its own process group), its output in log."""
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@dataclass
class Server:
    """A server process on a loopback port, leading its own process group."""

    process: subprocess.Popen
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def output(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Stop cleanly: SIGTERM to the leader, which stops the rest; wait for it."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """Crash the server: SIGKILL to the leader and all its workers at once."""
        # To the group even when the leader has exited: a child it left behind (the
        # development server's reloaded process) still belongs to the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def start_gunicorn(
    env: dict[str, str],
    log: Path,
    *,
    port: int = 0,
    wrapper: tuple[str, ...] = (),
    authority_base: str = "",
) -> Server:
    """Run the production command on port (a free one if 0); return once /healthz is 200.

    wrapper goes in front of the command (faketime, say). QR codes link to authority_base
    (a separate verification service), or to this server itself if it is empty. If the
    server exits or does not answer in time, it is killed and the test fails with the end
    of its log.
    """
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(env, PORT=str(port), AUTHORITY_BASE_URL=authority_base or base)
    server = Server(spawn([*wrapper, *GUNICORN_COMMAND], env, log), port, log)

    def ready() -> bool:
        if server.process.poll() is not None:
            pytest.fail(f"the server in {log.name} exited: {server.output()}")
        try:
            return Browser(base).request("/healthz")[0] == 200
        except OSError:
            return False

    try:
        wait_for(ready, f"the server in {log.name} to answer", timeout=START_SECONDS)
    except BaseException:
        server.kill()
        sys.stderr.write(f"--- {log.name} ---\n{server.output()}\n")
        raise
    return server


# --- A browser ------------------------------------------------------------------------


class Browser:
    """An HTTP client with a cookie jar on one server's pages, as a browser uses them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = CookieJar()
        self._opener = build_opener(HTTPCookieProcessor(self.jar))

    def request(
        self, path: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        """GET (or POST data), following redirects; return the final status and body."""
        url = path if path.startswith("http") else self.base + path
        try:
            with self._opener.open(Request(url, data=data, headers=headers or {}), timeout=30) as r:
                return r.status, r.read().decode()
        except HTTPError as error:
            return error.code, error.read().decode()

    def csrf(self) -> str:
        token = next((c.value for c in self.jar if c.name == "csrftoken"), None)
        assert token, "no CSRF cookie yet"
        return token

    def post(self, path: str, fields: dict[str, str]) -> tuple[int, str]:
        """Post a form with the CSRF token, as the page's own form would."""
        body = urlencode({"csrfmiddlewaretoken": self.csrf(), **fields}).encode()
        return self.request(path, body, {"Content-Type": "application/x-www-form-urlencoded"})

    def login(self) -> None:
        """Log in as the admin that migrate_with_admin created."""
        self.request("/accounts/login/")
        status, body = self.post("/accounts/login/", {"username": ADMIN, "password": PASSWORD})
        assert status == 200 and "Log out" in body, body[:500]

    def upload(self, license_text: bytes) -> tuple[int, str]:
        """Upload a Container.lic on the Registration page (container authentication)."""
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"'
            f"\r\n\r\n{self.csrf()}\r\n".encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="auth_method"'
            "\r\n\r\ncontainer\r\n".encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="license"; '
            'filename="Container.lic"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + license_text
            + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        return self.request(
            "/system/registration/upload",
            b"".join(parts),
            {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
