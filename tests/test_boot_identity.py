"""A boot id is joined only by a child of the live master that made it (or the master).

The process tests run real servers on a throwaway PostgreSQL database, register, then
crash or restart them with the old boot id (and its master's name) in the environment, as
someone hoping to keep the registration across a restart would. Leases are long here
(NODE_LEASE_SECONDS=60), so every restart happens well within the old lease: only the
boot's master decides whether the registration survives. The identity tests start plain
child processes to check the master test against real /proc entries.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from registration.cluster import identity, lifecycle
from registration.cluster.identity import BOOT_ID_ENV, BOOT_MASTER_ENV, Master
from registration.cluster.lifecycle import Life
from registration.models import AuditAction, NodeLease, RegistrationState
from tests.conftest import needs_postgres, needs_redis
from tests.node_steps import audit_count, lease, node, register, state
from tests.processes import (
    GUNICORN,
    PYTHON,
    ROOT,
    START_SECONDS,
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
from tests.test_cluster_processes import REMINDER, Node, state_text
from tests.test_cluster_processes import register as register_on

LEASE_SECONDS = 60
linux = pytest.mark.skipif(not identity.has_proc(), reason="needs Linux's /proc")


# --- The master test, in real child processes -------------------------------------------


def _child_python(
    code: str, env: dict[str, str], *, own_group: bool = False, with_secret: bool = True
) -> str:
    """Run code in a new Python process (this one its parent); return what it prints.

    own_group starts it in a session of its own, as a service manager starts a service.
    """
    secret_fd = os.environ.get(identity.BOOT_SECRET_FD_ENV)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        start_new_session=own_group,
        # As the master's children inherit it (fork, or the autoreloader's close_fds=False).
        pass_fds=(int(secret_fd),) if secret_fd and with_secret else (),
    )
    return done.stdout.strip()


def _master_as_child_sees_it(
    claim: str, *, own_group: bool = False, with_secret: bool = True
) -> str:
    """The master a child started with claim in its environment accepts, or "None"."""
    code = "from registration.cluster import identity; print(identity.inherited_master())"
    return _child_python(
        code, {BOOT_MASTER_ENV: claim}, own_group=own_group, with_secret=with_secret
    )


def _finished_process() -> Master:
    """The identity a process had, read while it ran; it has exited since."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    master = identity.live_process(child.pid)
    child.communicate(b"")
    assert master is not None
    return master


@linux
def test_start_time_is_field_22_of_proc_stat_in_clock_ticks_since_boot(tmp_path):
    # A command name with spaces and parentheses must not shift the fields.
    odd_name = tmp_path / "py) 1 2 (x"
    odd_name.symlink_to(sys.executable)
    child = subprocess.Popen(
        [str(odd_name), "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        started = identity.process_started(child.pid)
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    finally:
        child.communicate(b"")
    assert started is not None
    assert abs(started / os.sysconf("SC_CLK_TCK") - uptime) < 10  # it started just now
    assert identity.process_started(child.pid) is None  # gone


@linux
def test_this_process_is_named_by_pid_start_time_and_host_boot():
    me = identity.this_process()
    assert me.pid == os.getpid()
    assert me.started == identity.process_started(os.getpid())
    assert me.host_boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert Master.parse(str(me)) == me
    assert Master.parse("not a master") is None


@linux
def test_a_child_accepts_its_live_parent_as_master():
    me = identity.this_process()
    assert _master_as_child_sees_it(str(me)) == str(me)


@linux
def test_a_child_without_the_boot_secret_refuses_even_its_live_parent():
    # What a process that fakes the master's pid and start time (a user namespace with
    # its own pid and time namespaces) still lacks: the secret in the inherited memfd.
    me = identity.this_process()
    assert me.secret_hash
    assert _master_as_child_sees_it(str(me), with_secret=False) == "None"
    forged = Master(me.pid, me.started, me.host_boot_id, identity.secret_hash(b"x" * 32))
    assert _master_as_child_sees_it(str(forged)) == "None"


@linux
def test_a_child_refuses_a_master_that_is_not_its_parent():
    # The master lived and ran to its end: a dead master.
    assert _master_as_child_sees_it(str(_finished_process())) == "None"
    # The init process is alive, but no parent of this child.
    assert _master_as_child_sees_it(str(identity.live_process(1))) == "None"


@linux
def test_a_child_in_a_process_group_of_its_own_refuses_its_parent():
    # A service manager restarting a service it put in its own group is no boot master.
    assert _master_as_child_sees_it(str(identity.this_process()), own_group=True) == "None"


@linux
def test_a_child_refuses_its_parent_under_another_start_time_or_host_boot():
    me = identity.this_process()
    assert me.started is not None
    # Another process once ran under the parent's pid: this is not that process.
    reused = Master(me.pid, me.started - 1, me.host_boot_id)
    assert _master_as_child_sees_it(str(reused)) == "None"
    other_boot = Master(me.pid, me.started, str(uuid.uuid4()))
    assert _master_as_child_sees_it(str(other_boot)) == "None"
    assert _master_as_child_sees_it("garbage") == "None"


@linux
def test_the_process_that_made_the_boot_id_is_its_master():
    code = (
        "import json; from registration.cluster import identity\n"
        "boot_id = identity.new_boot()\n"
        "print(json.dumps([str(boot_id), str(identity.this_process()),"
        " str(identity.inherited_master())]))"
    )
    boot_id, me, accepted = json.loads(_child_python(code, {BOOT_ID_ENV: str(uuid.uuid4())}))
    assert accepted == me
    assert uuid.UUID(boot_id)


# --- The lease check, in process ----------------------------------------------------------


@pytest.fixture
def _lease_times(settings):
    settings.NODE_LEASE_SECONDS = 30
    settings.NODE_HEARTBEAT_SECONDS = 10


def _other_master() -> Master:
    return _finished_process() if identity.has_proc() else Master(os.getppid())


@pytest.mark.django_db
def test_the_lease_records_the_boot_master_and_its_processes_join(
    frozen_clock, issue, _lease_times
):
    a = node("node-a")
    master = _other_master()
    assert lifecycle.start_node(a, master=master).life == Life.STARTED
    recorded = lease(a)
    assert (recorded.master_pid, recorded.master_started, recorded.host_boot_id) == (
        master.pid,
        master.started,
        master.host_boot_id,
    )
    register(issue()[1])
    frozen_clock.advance(seconds=20)
    assert lifecycle.start_node(a, master=master).life == Life.ATTACHED
    assert state() == RegistrationState.REGISTERED


@pytest.mark.django_db
def test_a_lease_of_another_master_is_not_joined_a_new_boot_begins(
    frozen_clock, issue, _lease_times
):
    a = node("node-a")
    lifecycle.start_node(a, master=_other_master())
    register(issue()[1])
    frozen_clock.advance(seconds=5)  # the old lease is alive
    joined = lifecycle.start_node(a, master=identity.this_process())
    assert joined.life == Life.STARTED
    assert joined.node.name == "node-a"
    assert joined.node.boot_id not in (a.boot_id, identity.successor(a).boot_id)
    assert joined.master == identity.this_process()
    assert lease(joined.node).master_pid == os.getpid()
    assert lease(a).released_at == frozen_clock.now()  # closed as the previous life
    assert state() == RegistrationState.EXPIRED_DUE_TO_RESTART
    assert audit_count(AuditAction.EXPIRED_DUE_TO_RESTART) == 1


@pytest.mark.django_db
def test_the_next_life_of_a_boot_keeps_its_master(frozen_clock, _lease_times):
    a = node("node-a")
    master = _other_master()
    lifecycle.start_node(a, master=master)
    frozen_clock.advance(seconds=30)  # the lease died, the master did not
    following = lifecycle.heartbeat(a, master=master)
    assert (following.life, following.node) == (Life.STARTED, identity.successor(a))
    assert lifecycle.lease_master(lease(following.node)) == master
    # A sibling worker of the same master, still on the first boot id, joins the next life.
    assert lifecycle.start_node(a, master=master).life == Life.ATTACHED
    assert NodeLease.objects.count() == 2


# --- Real servers -------------------------------------------------------------------------


class BootDatabase(Database):
    """The tables these tests look at, read from outside the servers."""

    def state(self) -> str:
        return self.query("SELECT state FROM registration_installation")[0][0]

    def leases(self, name: str) -> list[dict[str, object]]:
        """The leases of the node called name, oldest first."""
        columns = (
            "boot_id",
            "started_at",
            "last_seen",
            "released_at",
            "master_pid",
            "master_started",
            "host_boot_id",
        )
        rows = self.query(
            f"SELECT {', '.join(columns)} FROM registration_nodelease WHERE node_name = %s "
            "ORDER BY started_at",
            name,
        )
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def expired_audits(self) -> int:
        sql = "SELECT count(*) FROM registration_auditevent WHERE action = %s"
        return self.query(sql, AuditAction.EXPIRED_DUE_TO_RESTART.value)[0][0]


@pytest.fixture(scope="module")
def boot_env(key_dir, tmp_path_factory) -> Iterator[tuple[dict[str, str], BootDatabase]]:
    """A fresh PostgreSQL database, migrated, with an admin and the test vendor keys."""
    with scratch_database("boot") as url:
        env = server_env(
            url,
            key_dir,
            tmp_path_factory.mktemp("boot-var"),
            CACHE_URL=os.environ["CACHE_URL"],
            NODE_NAME="a",
            NODE_HEARTBEAT_SECONDS="1",
            NODE_LEASE_SECONDS=str(LEASE_SECONDS),
            STATUS_CACHE_SECONDS="1",
            WEB_CONCURRENCY="2",
        )
        migrate_with_admin(env)
        yield env, BootDatabase(url)


@dataclass
class Servers:
    """Starts servers for one test and kills what is left of them at its end."""

    env: dict[str, str]
    db: BootDatabase
    logs: Path
    started: list[Server]

    def _log(self, kind: str) -> Path:
        return self.logs / f"{kind}-{len(self.started)}.log"

    def gunicorn(self, port: int = 0, **env: str) -> Server:
        """The production command (gunicorn -c gunicorn.conf.py), master and workers."""
        server = start_gunicorn(dict(self.env, **env), self._log("gunicorn"), port=port)
        self.started.append(server)
        return server

    def command(self, command: list[str], port: int = 0, **env: str) -> Server:
        """Any other server command, listening on port; return once /healthz is 200."""
        port = port or free_port()
        base = f"http://127.0.0.1:{port}"
        log = self._log(Path(command[0]).name)
        env = dict(self.env, PORT=str(port), AUTHORITY_BASE_URL=base, **env)
        server = Server(
            spawn([part.replace("{port}", str(port)) for part in command], env, log), port, log
        )
        self.started.append(server)

        def ready() -> bool:
            if not server.running:
                pytest.fail(f"the server in {log.name} exited: {server.output()}")
            try:
                return Browser(base).request("/healthz")[0] == 200
            except OSError:
                return False

        wait_for(ready, f"the server in {log.name} to answer", timeout=START_SECONDS)
        return server

    def runserver(self, port: int = 0, **env: str) -> Server:
        """The development server: the autoreloader's outer process and its child."""
        return self.command(RUNSERVER, port, **env)


RUNSERVER = [str(PYTHON), "manage.py", "runserver", "127.0.0.1:{port}"]
# The development server's serving process, started as the autoreloader starts it.
RUNSERVER_CHILD = [str(PYTHON), "manage.py", "runserver", "--noreload", "127.0.0.1:{port}"]
CHILD_ENV = {"RUN_MAIN": "true"}
# gunicorn without gunicorn.conf.py (read from the working directory unless -c names
# another file): its master makes no boot id, so its worker inherits whatever it is given.
BARE_GUNICORN = [
    str(GUNICORN),
    *("-c", os.devnull, "-b", "127.0.0.1:{port}", "-w", "1"),
    "licserver.wsgi",
]


@pytest.fixture
def servers(boot_env, tmp_path) -> Iterator[Servers]:
    env, db = boot_env
    # Each test starts from an empty installation (and vendor bindings), same users.
    db.query(
        "TRUNCATE registration_qrchallenge, registration_nodelease, registration_installation, "
        "registration_installedlicense, authority_binding, registration_auditevent, "
        "authority_auditevent CASCADE"
    )
    subprocess.run(
        ["redis-cli", "-u", env["CACHE_URL"], "FLUSHDB"], check=False, capture_output=True
    )
    started = Servers(env, db, tmp_path, [])
    try:
        yield started
    finally:
        for server in started.started:
            if server.running:
                server.kill()
            sys.stderr.write(f"--- {server.log.name} ---\n{server.output(1500)}\n")


def registered(servers: Servers, server: Server) -> tuple[uuid.UUID, Master]:
    """Register the installation on server; return its boot id and master, as recorded."""
    license_text = issue_license(servers.env, servers.logs / "Container.lic", max_nodes=1)
    assert state_text(register_on(Node("a", server), license_text)) == "Registered"
    assert servers.db.state() == "registered"
    (only,) = servers.db.leases("a")
    master = identity.live_process(server.process.pid)
    assert master is not None
    return only["boot_id"], master


def assert_a_new_boot(db: BootDatabase, old_boot: uuid.UUID) -> dict[str, object]:
    """The node began a new boot within the old lease, and the registration expired."""
    rows = db.leases("a")
    assert len(rows) == 2, f"the restarted node joined the old boot: {rows}"
    old, new = rows
    assert old["boot_id"] == old_boot
    assert new["boot_id"] not in (old_boot, identity.successor(node_of(old_boot)).boot_id)
    # The old lease was still alive when the new boot began: closed by it, not expired.
    assert old["released_at"] == new["started_at"]
    assert (new["started_at"] - old["last_seen"]).total_seconds() < LEASE_SECONDS
    assert db.state() == "expired_due_to_restart"
    assert db.expired_audits() == 1
    return new


def node_of(boot_id: uuid.UUID) -> identity.NodeIdentity:
    return identity.NodeIdentity("a", boot_id)


def attached_lines(server: Server, boot_id: uuid.UUID) -> int:
    """How many processes of server said they joined the boot."""
    return len(re.findall(rf"Node a \(boot {boot_id}\) attached", server.output(10**7)))


def children(pid: int) -> set[int]:
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


# A parent for a restarted server that stays alive and names itself as master, as a
# wrapper someone wrote to keep the boot might: it puts LICSERVER_BOOT_MASTER (made from
# LAUNCHER_MASTER, {pid} and {me} being its pid and full identity) in its child's
# environment and waits for the child.
LAUNCHER = (
    "import os, subprocess, sys\n"
    "from registration.cluster import identity\n"
    "claim = os.environ.pop('LAUNCHER_MASTER')\n"
    "os.environ[identity.BOOT_MASTER_ENV] = claim.format(\n"
    "    pid=os.getpid(), me=identity.this_process())\n"
    "sys.exit(subprocess.run(sys.argv[1:]).returncode)\n"
)


@dataclass(frozen=True)
class Inherited:
    """What a restarted server is given: its environment, and a parent to start under."""

    env: dict[str, str]
    launcher_master: str = ""  # not empty: start under LAUNCHER, naming this master

    def command(self, command: list[str]) -> list[str]:
        if not self.launcher_master:
            return command
        return [str(PYTHON), "-c", LAUNCHER, *command]

    def environment(self) -> dict[str, str]:
        if not self.launcher_master:
            return self.env
        return dict(self.env, LAUNCHER_MASTER=self.launcher_master)


# From the old boot id and the old master (killed): what a restarted server may inherit.
INHERITED: dict[str, Callable[[uuid.UUID, Master], Inherited]] = {
    "the old boot id alone": lambda boot, master: Inherited({BOOT_ID_ENV: str(boot)}),
    "and the dead master's name": lambda boot, master: Inherited(
        {BOOT_ID_ENV: str(boot), BOOT_MASTER_ENV: str(master)}
    ),
    "and its parent's pid with the dead master's start time": lambda boot, master: Inherited(
        {BOOT_ID_ENV: str(boot)}, f"{{pid}}:{master.started}:{master.host_boot_id}"
    ),
    "and a live parent that names itself master": lambda boot, master: Inherited(
        {BOOT_ID_ENV: str(boot)}, "{me}"
    ),
    "and a parent in another process group named master": lambda boot, master: Inherited(
        # This test process: the server is started in a session of its own.
        {BOOT_ID_ENV: str(boot), BOOT_MASTER_ENV: str(identity.this_process())}
    ),
}


@linux
@pytest.mark.processes
@needs_redis
@needs_postgres
@pytest.mark.parametrize("inherit", INHERITED.values(), ids=INHERITED.keys())
@pytest.mark.parametrize(
    "restarted",
    [(RUNSERVER_CHILD, CHILD_ENV), (BARE_GUNICORN, {})],
    ids=["a development server child", "gunicorn without its config"],
)
def test_a_process_with_an_old_boot_id_but_not_its_masters_child_starts_a_new_boot(
    servers,
    inherit: Callable[[uuid.UUID, Master], Inherited],
    restarted: tuple[list[str], dict[str, str]],
):
    old = servers.gunicorn()
    old_boot, old_master = registered(servers, old)
    old.kill()  # master and workers, SIGKILL: the old lease stays alive
    command, env = restarted
    inherited = inherit(old_boot, old_master)
    servers.command(inherited.command(command), **env, **inherited.environment())
    new = assert_a_new_boot(servers.db, old_boot)
    assert new["master_pid"] != old_master.pid


@linux
@pytest.mark.processes
@needs_redis
@needs_postgres
def test_a_worker_the_live_master_forks_anew_joins_its_boot(servers):
    server = servers.gunicorn()
    boot, master = registered(servers, server)
    (recorded,) = servers.db.leases("a")
    assert (recorded["master_pid"], recorded["master_started"], recorded["host_boot_id"]) == (
        master.pid,
        master.started,
        master.host_boot_id,
    )
    workers = wait_for(lambda: len(children(master.pid)) == 2 and children(master.pid), "2 workers")
    joined = attached_lines(server, boot)
    crashed = min(workers)
    os.kill(crashed, signal.SIGKILL)  # the master forks a new worker in its place
    wait_for(lambda: attached_lines(server, boot) > joined, "the new worker to join the boot")
    assert crashed not in children(master.pid)
    assert [row["boot_id"] for row in servers.db.leases("a")] == [boot]
    assert servers.db.state() == "registered"


@linux
@pytest.mark.processes
@needs_redis
@needs_postgres
def test_a_code_reload_of_the_development_server_joins_its_boot(servers):
    server = servers.runserver()
    boot, outer = registered(servers, server)
    (recorded,) = servers.db.leases("a")
    assert (recorded["master_pid"], recorded["master_started"]) == (outer.pid, outer.started)
    (serving,) = children(outer.pid)
    joined = attached_lines(server, boot)
    os.utime(identity.__file__)  # a code change, as the autoreloader sees one
    wait_for(lambda: attached_lines(server, boot) > joined, "the reloaded child to join the boot")
    assert serving not in children(outer.pid)
    assert [row["boot_id"] for row in servers.db.leases("a")] == [boot]
    assert servers.db.state() == "registered"


@linux
@pytest.mark.processes
@needs_redis
@needs_postgres
@pytest.mark.parametrize("start", ["gunicorn", "runserver"])
def test_a_master_killed_and_restarted_with_its_old_boot_id_starts_a_new_boot(servers, start):
    begin: Callable[..., Server] = getattr(servers, start)
    old = begin()
    old_boot, old_master = registered(servers, old)
    old.kill()  # SIGKILL, no release: the old lease stays alive
    inherited = {BOOT_ID_ENV: str(old_boot), BOOT_MASTER_ENV: str(old_master)}
    restarted = begin(**inherited)
    new = assert_a_new_boot(servers.db, old_boot)
    assert new["master_pid"] == restarted.process.pid
    browser = Browser(restarted.base)
    browser.login()
    assert REMINDER in browser.request("/system/version/")[1]
