"""A cluster of real server processes: the production command, one PostgreSQL database,
one Redis, nodes on loopback ports, driven over HTTP like a browser would.

Each node is `gunicorn -c gunicorn.conf.py licserver.wsgi` in its own session, so a crash
is simulated by SIGKILL to the whole process group. Leases are short here
(NODE_HEARTBEAT_SECONDS=1, NODE_LEASE_SECONDS=3); every wait polls with a deadline.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import needs_postgres, needs_redis
from tests.phone_steps import shown_code
from tests.processes import (
    PYTHON,
    Browser,
    Database,
    Server,
    free_port,
    issue_license,
    migrate_with_admin,
    scratch_database,
    server_env,
    spawn,
    start_gunicorn,
    wait_for,
)

pytestmark = [pytest.mark.processes, needs_postgres, needs_redis]

FAKETIME = shutil.which("faketime") or "/usr/bin/faketime"
LEASE_SECONDS = 3
REMINDER = (
    "Your project registration has expired due to project restart. "
    "Enter registration management and authenticate again."
)


# --- The database and the environment ------------------------------------------------


class ClusterDatabase(Database):
    """The tables the cluster tests look at, read from outside the nodes."""

    def state(self) -> str:
        return self.query("SELECT state FROM registration_installation")[0][0]

    def live_leases(self) -> list[tuple]:
        return self.query(
            "SELECT node_name, admitted, offset_seconds FROM registration_nodelease "
            "WHERE released_at IS NULL AND last_seen > clock_timestamp() - %s * interval '1 s'"
            " ORDER BY node_name",
            LEASE_SECONDS,
        )


@pytest.fixture(scope="module")
def cluster_env(key_dir, tmp_path_factory) -> Iterator[tuple[dict[str, str], ClusterDatabase]]:
    """A fresh PostgreSQL database, migrated, with an admin and the test vendor keys."""
    with scratch_database("proc") as url:
        env = server_env(
            url,
            key_dir,
            tmp_path_factory.mktemp("cluster-var"),
            CACHE_URL=os.environ["CACHE_URL"],
            NODE_HEARTBEAT_SECONDS="1",
            NODE_LEASE_SECONDS=str(LEASE_SECONDS),
            STATUS_CACHE_SECONDS="1",
            WEB_CONCURRENCY="2",
        )
        migrate_with_admin(env)
        yield env, ClusterDatabase(url)


# --- Nodes ---------------------------------------------------------------------------


class Node(Browser):
    """A browser on one node's pages, and the node's server process."""

    def __init__(self, name: str, server: Server) -> None:
        super().__init__(server.base)
        self.name = name
        self.server = server

    @property
    def port(self) -> int:
        return self.server.port

    def scan_and_submit(self, page: str) -> str:
        """Open the QR's link as the phone does, type its code; return the page after."""
        link = re.search(r'<code id="challenge-link">([^<]+)</code>', page)
        assert link, "no QR code on the page"
        status, phone = self.request(html.unescape(link.group(1)))
        code = shown_code(phone)
        assert status == 200 and code, phone[:800]
        status, body = self.post("/system/registration/code", {"code": code})
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
        wrapper = (FAKETIME, "-f", clock_ahead) if clock_ahead else ()
        log = self.logs / f"{name}-{port}-{len(self.nodes)}.log"
        server = start_gunicorn(dict(self.env, NODE_NAME=name), log, port=port, wrapper=wrapper)
        node = Node(name, server)
        self.nodes.append(node)
        return node

    def stop(self, node: Node) -> None:
        """Stop a node cleanly (SIGTERM to the gunicorn master) and wait for it."""
        node.server.stop()

    def kill(self, node: Node) -> None:
        """Crash a node: SIGKILL to the master and all its workers at once."""
        node.server.kill()

    def close(self) -> None:
        for node in self.nodes:
            if node.server.running:
                node.server.kill()


@pytest.fixture
def cluster(cluster_env, tmp_path) -> Iterator[tuple[Cluster, ClusterDatabase]]:
    env, db = cluster_env
    # Each test starts from an empty installation (and vendor bindings), same users.
    db.query(
        "TRUNCATE registration_qrchallenge, registration_nodelease, registration_installation, "
        "registration_installedlicense, authority_binding, registration_auditevent, "
        "authority_auditevent CASCADE"
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
            sys.stderr.write(f"--- {node.server.log.name} ---\n{node.server.output(1500)}\n")


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
    command = [str(PYTHON), "manage.py", "runserver", f"127.0.0.1:{port}"]
    server = Server(spawn(command, env, log), port, log)
    try:
        wait_for(lambda: db.live_leases(), "the development server's lease", timeout=30)
        assert [lease[0] for lease in db.live_leases()] == ["dev"]
        server.stop(timeout=20)  # SIGTERM to the outer (autoreloader) process
        assert db.live_leases() == []
        assert db.query("SELECT count(*) FROM registration_nodelease")[0][0] == 1
    finally:
        server.kill()
