"""A cluster of real server processes: the production command, one PostgreSQL database,
one Redis, nodes on loopback ports, driven over HTTP like a browser would.

Each node is `gunicorn -c gunicorn.conf.py licserver.wsgi` in its own session, so a crash
is simulated by SIGKILL to the whole process group. Leases are short here
(NODE_HEARTBEAT_SECONDS=1, NODE_LEASE_SECONDS=3); every wait polls with a deadline.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlencode, urlparse, urlunparse
from urllib.request import HTTPCookieProcessor, Request, build_opener

import psycopg
import pytest

from tests.conftest import KID, needs_postgres, needs_redis

pytestmark = [pytest.mark.processes, needs_postgres, needs_redis]

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
FAKETIME = shutil.which("faketime") or "/usr/bin/faketime"
ADMIN, PASSWORD = "cluster-admin", "pw-cluster-admin-1"
LEASE_SECONDS = 3
REMINDER = (
    "Your project registration has expired due to project restart. "
    "Enter registration management and authenticate again."
)


def wait_for(check: Callable[[], object], what: str, timeout: float = 20.0) -> object:
    """Poll check until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- The database and the environment ------------------------------------------------


@dataclass
class Database:
    url: str

    def query(self, sql: str, *params: object) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def state(self) -> str:
        return self.query("SELECT state FROM registration_installation")[0][0]

    def live_leases(self) -> list[tuple]:
        return self.query(
            "SELECT node_name, admitted, offset_seconds FROM registration_nodelease "
            "WHERE released_at IS NULL AND last_seen > clock_timestamp() - %s * interval '1 s'"
            " ORDER BY node_name",
            LEASE_SECONDS,
        )


def with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


@pytest.fixture(scope="module")
def cluster_env(key_dir, tmp_path_factory) -> Iterator[tuple[dict[str, str], Database]]:
    """A fresh PostgreSQL database, migrated, with an admin and the test vendor keys."""
    base_url = os.environ["DATABASE_URL"]
    name = f"licserver_proc_{secrets.token_hex(4)}"
    admin_url = with_database(base_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    var_dir = tmp_path_factory.mktemp("cluster-var")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PYTEST_", "LICSERVER_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="licserver.settings",
        DATABASE_URL=with_database(base_url, name),
        CACHE_URL=os.environ["CACHE_URL"],
        LICSERVER_VAR_DIR=str(var_dir),
        SECRET_KEY=secrets.token_urlsafe(40),
        KEYS_DIR=str(key_dir),
        AUTHORITY_KID=KID,
        NODE_HEARTBEAT_SECONDS="1",
        NODE_LEASE_SECONDS=str(LEASE_SECONDS),
        STATUS_CACHE_SECONDS="1",
        WEB_CONCURRENCY="2",
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
                [str(PYTHON), "manage.py", *command], cwd=ROOT, env=env, check=True, timeout=120
            )
        yield env, Database(env["DATABASE_URL"])
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def issue_license(env: dict[str, str], out: Path, max_nodes: int) -> bytes:
    """Sign a Container.lic and record it in the vendor's registry, as the vendor does."""
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
            f"--max-nodes={max_nodes}",
            f"--kid={KID}",
            f"--out={out}",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
    )
    return out.read_bytes()


# --- Nodes ---------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    port: int
    process: subprocess.Popen
    log: Path
    opener: object = None
    jar: CookieJar = field(default_factory=CookieJar)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, path: str, data: bytes | None = None, headers=None) -> tuple[int, str]:
        """GET (or POST data) and follow redirects; return the final status and body."""
        if self.opener is None:
            self.opener = build_opener(HTTPCookieProcessor(self.jar))
        url = path if path.startswith("http") else self.base + path
        request = Request(url, data=data, headers=headers or {})
        try:
            with self.opener.open(request, timeout=20) as response:
                return response.status, response.read().decode()
        except HTTPError as error:
            return error.code, error.read().decode()

    def csrf(self) -> str:
        token = next((c.value for c in self.jar if c.name == "csrftoken"), None)
        assert token, "no CSRF cookie yet"
        return token

    def post(self, path: str, fields: dict[str, str]) -> tuple[int, str]:
        body = urlencode({"csrfmiddlewaretoken": self.csrf(), **fields}).encode()
        return self.request(path, body, {"Content-Type": "application/x-www-form-urlencoded"})

    def login(self) -> None:
        self.request("/accounts/login/")
        status, body = self.post("/accounts/login/", {"username": ADMIN, "password": PASSWORD})
        assert status == 200 and "Log out" in body, body[:500]

    def upload(self, license_text: bytes) -> tuple[int, str]:
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

    def scan_and_submit(self, page: str) -> str:
        """Open the QR's link as the phone does, type its code; return the page after."""
        link = re.search(r'<code id="challenge-link">([^<]+)</code>', page)
        assert link, "no QR code on the page"
        status, phone = self.request(html.unescape(link.group(1)))
        code = re.search(r'id="verification-code"[^>]*>(\d{6})<', phone)
        assert status == 200 and code, phone[:800]
        status, body = self.post("/system/registration/code", {"code": code.group(1)})
        assert status == 200, body[:800]
        return body


class Cluster:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.nodes: list[Node] = []

    def start(self, name: str, port: int | None = None, clock_ahead: str = "") -> Node:
        """Start one node and wait until it answers HTTP."""
        port = port or free_port()
        env = dict(self.env, NODE_NAME=name, PORT=str(port))
        env["AUTHORITY_BASE_URL"] = f"http://127.0.0.1:{port}"
        command = [str(GUNICORN), "-c", "gunicorn.conf.py", "licserver.wsgi"]
        if clock_ahead:
            command = [FAKETIME, "-f", clock_ahead, *command]
        log = self.logs / f"{name}-{port}-{len(self.nodes)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        node = Node(name, port, process, log)
        self.nodes.append(node)

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"node {name} exited: {log.read_text()[-2000:]}")
            try:
                return node.request("/accounts/login/")[0] in (200, 503)
            except OSError:
                return False

        wait_for(ready, f"node {name} to answer", timeout=30)
        return node

    def stop(self, node: Node) -> None:
        """Stop a node cleanly (SIGTERM to the gunicorn master) and wait for it."""
        node.process.send_signal(signal.SIGTERM)
        node.process.wait(timeout=30)

    def kill(self, node: Node) -> None:
        """Crash a node: SIGKILL to the master and all its workers at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, signal.SIGKILL)
        node.process.wait(timeout=10)

    def close(self) -> None:
        for node in self.nodes:
            if node.process.poll() is None:
                self.kill(node)


@pytest.fixture
def cluster(cluster_env, tmp_path) -> Iterator[tuple[Cluster, Database]]:
    env, db = cluster_env
    # Each test starts from an empty installation (and vendor bindings), same users.
    db.query(
        "TRUNCATE registration_challenge, registration_nodelease, registration_installation, "
        "registration_installedlicense, registration_binding, registration_auditevent CASCADE"
    )
    subprocess.run(
        ["redis-cli", "-u", env["CACHE_URL"], "FLUSHDB"], check=False, capture_output=True
    )
    nodes = Cluster(env, tmp_path)
    try:
        yield nodes, db
    finally:
        nodes.close()
        for node in nodes.nodes:
            sys.stderr.write(f"--- {node.log.name} ---\n{node.log.read_text()[-1500:]}\n")


def register(node: Node, license_text: bytes) -> str:
    """Log in, upload, scan, type the code: return the Registration page after."""
    node.login()
    status, page = node.upload(license_text)
    assert status == 200, page[:2000]
    return node.scan_and_submit(page)


def state_text(page: str) -> str:
    found = re.search(r'id="registration-state">\s*(.*?)\s*</p>', page, re.S)
    assert found, page[:800]
    return found.group(1).strip()


# --- Tests ---------------------------------------------------------------------------


def test_restarts_keep_or_expire_the_registration_and_re_register_works(cluster, tmp_path):
    nodes, db = cluster
    license_text = issue_license(nodes.env, tmp_path / "Container.lic", max_nodes=2)
    a = nodes.start("a")
    b = nodes.start("b")
    page = register(a, license_text)
    assert state_text(page) == "Registered"
    assert db.state() == "registered"

    # One node stopped cleanly and started again while the other kept serving.
    nodes.stop(a)
    assert [lease[0] for lease in db.live_leases()] == ["b"]  # released at once
    a = nodes.start("a", port=a.port)
    a.login()
    assert state_text(a.request("/system/registration/")[1]) == "Registered"
    assert db.state() == "registered"

    # Both crash; once their leases have run out, both start again.
    nodes.kill(a)
    nodes.kill(b)
    wait_for(lambda: not db.live_leases(), "the killed nodes' leases to expire", timeout=15)
    a = nodes.start("a", port=a.port)
    b = nodes.start("b", port=b.port)
    assert db.state() == "expired_due_to_restart"
    for node in (a, b):
        node.login()
        status, version_page = node.request("/system/version/")
        assert status == 200 and REMINDER in version_page
        assert 'id="authenticate"' in version_page
    status, page = b.request("/system/registration/")
    assert state_text(page) == "Expired due to restart"
    assert 'id="re-register"' in page
    status, page = b.post("/system/registration/challenge", {})
    assert status == 200, page[:800]
    assert state_text(b.scan_and_submit(page)) == "Registered"
    assert db.state() == "registered"
    assert REMINDER not in a.request("/system/version/")[1]


def test_a_third_node_against_two_seats_is_not_admitted(cluster, tmp_path):
    nodes, db = cluster
    license_text = issue_license(nodes.env, tmp_path / "Container.lic", max_nodes=2)
    a = nodes.start("a")
    nodes.start("b")
    register(a, license_text)
    c = nodes.start("c")
    status, page = c.request("/system/registration/")
    assert status == 503
    assert "License Exhausted" in page and "a, b" in page
    assert db.live_leases() == [
        ("a", True, pytest.approx(0, abs=1)),
        ("b", True, pytest.approx(0, abs=1)),
        ("c", False, pytest.approx(0, abs=1)),
    ]
    # The admitted nodes keep working.
    assert state_text(a.request("/system/registration/")[1]) == "Registered"


def test_a_node_with_its_clock_60_s_ahead_blocks_registration(cluster, tmp_path):
    nodes, db = cluster
    license_text = issue_license(nodes.env, tmp_path / "Container.lic", max_nodes=2)
    a = nodes.start("a")
    register(a, license_text)
    nodes.start("b", clock_ahead="+60s")
    offsets = dict((name, offset) for name, _admitted, offset in db.live_leases())
    assert offsets["b"] == pytest.approx(60, abs=2)

    # Re-registration (a new QR for the installed license) is refused, naming the node.
    status, page = a.post("/system/registration/challenge", {})
    assert status == 422
    assert "Cluster Clock Skew" in page
    assert re.search(r"Node b: clock offset \+(59|60|61)\.\d s", html.unescape(page))
    # So is registering a license anew.
    status, page = a.upload(license_text)
    assert status == 422
    assert "Cluster Clock Skew" in page


def test_the_development_server_is_a_node_released_at_a_clean_stop(cluster, tmp_path):
    nodes, db = cluster
    port = free_port()
    env = dict(nodes.env, NODE_NAME="dev", PORT=str(port))
    log = tmp_path / "runserver.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(PYTHON), "manage.py", "runserver", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: db.live_leases(), "the development server's lease", timeout=30)
        assert [lease[0] for lease in db.live_leases()] == ["dev"]
        process.send_signal(signal.SIGTERM)  # to the outer (autoreloader) process
        process.wait(timeout=20)
        assert db.live_leases() == []
        assert db.query("SELECT count(*) FROM registration_nodelease")[0][0] == 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
