"""Who this node is: NODE_NAME plus a boot id that is new each time the node starts.

The process that starts the node (the gunicorn master, the development server's outer
process) is the boot's **master**: it makes the boot id and passes it to its worker
processes in the environment (LICSERVER_BOOT_ID), together with what identifies the
master itself (LICSERVER_BOOT_MASTER: its pid, its start time and the host's boot id).
The environment is only a hint: a process trusts an inherited boot id only while that
master is alive and is its parent (or the process itself), and its lease records the
same master (lifecycle._start() checks that). See docs/cluster.md.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

log = logging.getLogger(__name__)

BOOT_ID_ENV = "LICSERVER_BOOT_ID"
BOOT_MASTER_ENV = "LICSERVER_BOOT_MASTER"
# Namespace text for the next life's boot id (see successor()).
_NEXT_LIFE = "licserver-next-life"
PROC = Path("/proc")
HOST_BOOT_ID_FILE = PROC / "sys" / "kernel" / "random" / "boot_id"
# /proc/<pid>/stat field 22 (starttime), counted from field 3, the first after "(comm)".
_STARTTIME_FIELD = 22 - 3


@dataclass(frozen=True)
class NodeIdentity:
    name: str
    boot_id: uuid.UUID

    def __str__(self) -> str:
        return f"{self.name} (boot {self.boot_id})"


@dataclass(frozen=True)
class Master:
    """One process, told apart from any later process that reuses its pid.

    started is the process's start time in clock ticks since the host booted (field 22 of
    /proc/<pid>/stat) and host_boot_id the kernel's boot id, so a pid reused later, or
    after a reboot, is another process. Without /proc both are empty and only the pid
    counts.
    """

    pid: int
    started: int | None = None
    host_boot_id: str = ""
    # SHA-256 (hex, 32 digits) of the boot's secret, which only the master and the
    # processes it starts hold (boot_secret()); the lease records it.
    secret_hash: str = ""

    def __str__(self) -> str:
        started = "" if self.started is None else str(self.started)
        return f"{self.pid}:{started}:{self.host_boot_id}:{self.secret_hash}"

    @classmethod
    def parse(cls, text: str) -> Master | None:
        """Read a Master from str(master); None when text is not one."""
        pid, _, rest = text.partition(":")
        started, _, rest = rest.partition(":")
        host_boot_id, _, secret_hash = rest.partition(":")
        try:
            return cls(int(pid), int(started) if started else None, host_boot_id, secret_hash)
        except ValueError:
            return None

    def same_process(self, other: Master | None) -> bool:
        return other is not None and (self.pid, self.started, self.host_boot_id) == (
            other.pid,
            other.started,
            other.host_boot_id,
        )


# --- The boot secret ------------------------------------------------------------------
# /proc can be faked without root (a user namespace with its own pid and time namespaces
# can give a new process a dead master's pid and start time), so the master also makes a
# random secret and hands it to the processes it starts in an inherited, unnamed file
# (memfd), never in the environment. A process that cannot read the secret whose hash
# the lease records does not join the boot. What remains: a process of the same user
# that reads a live master's descriptors (/proc/<pid>/fd) or attaches a debugger.
BOOT_SECRET_FD_ENV = "LICSERVER_BOOT_SECRET_FD"
SECRET_BYTES = 32


class _Secret:
    """The boot secret this process made as a master (None until it makes one)."""

    value: bytes | None = None


def secret_hash(secret: bytes | None) -> str:
    return hashlib.sha256(secret).hexdigest()[:32] if secret else ""


def _new_secret() -> bytes:
    """Make this process's boot secret and put it where its children inherit it."""
    secret = secrets.token_bytes(SECRET_BYTES)
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("licserver-boot-secret", 0)
    else:  # no memfd: an unlinked temporary file serves the same
        fd, path = tempfile.mkstemp(prefix="licserver-boot-")
        os.unlink(path)
    os.write(fd, secret)
    os.set_inheritable(fd, True)
    os.environ[BOOT_SECRET_FD_ENV] = str(fd)
    _Secret.value = secret
    return secret


def inherited_secret() -> bytes | None:
    """Return the boot secret from the descriptor this process inherited, if any."""
    try:
        fd = int(os.environ.get(BOOT_SECRET_FD_ENV, ""))
        secret = os.pread(fd, SECRET_BYTES + 1, 0)
    except (ValueError, OSError):
        return None
    return secret if len(secret) == SECRET_BYTES else None


def has_proc() -> bool:
    """True where processes can be told apart by their start time (Linux's /proc)."""
    return (PROC / "self" / "stat").is_file()


def host_boot_id() -> str:
    """Return the kernel's boot id, new at every boot of the host ("" without /proc)."""
    try:
        return HOST_BOOT_ID_FILE.read_text().strip()
    except OSError:
        return ""


def process_started(pid: int) -> int | None:
    """Return when process pid started, in clock ticks since boot; None if not running."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from its end.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[_STARTTIME_FIELD])


def live_process(pid: int) -> Master | None:
    """Return the process running as pid now, or None when there is none.

    Without /proc, a pid is all there is to compare (see docs/cluster.md).
    """
    if not has_proc():
        return Master(pid)
    started = process_started(pid)
    if started is None:
        return None
    return Master(pid, started, host_boot_id())


def this_process() -> Master:
    """Return this process as the master of a boot (a master records it for its boot),
    with the boot secret it made (made now if it has none)."""
    found = live_process(os.getpid()) or Master(os.getpid())
    secret = _Secret.value or _new_secret()
    return Master(found.pid, found.started, found.host_boot_id, secret_hash(secret))


def new_boot() -> uuid.UUID:
    """Make a new boot id with this process as its master, for it and its children."""
    boot_id = uuid.uuid4()
    _new_secret()
    os.environ[BOOT_ID_ENV] = str(boot_id)
    os.environ[BOOT_MASTER_ENV] = str(this_process())
    return boot_id


def own_boot(name: str) -> NodeIdentity:
    """Return a new boot of the node called name, for this process to master.

    Nothing is written to the environment yet: the process adopts the boot once its
    lease is recorded.
    """
    return NodeIdentity(name, uuid.uuid4())


def in_my_process_group(pid: int) -> bool:
    """True if process pid is in this process's process group (True where none exist)."""
    if not hasattr(os, "getpgid"):
        return True
    try:
        return os.getpgid(pid) == os.getpgid(0)
    except OSError:
        return False


def inherited_master() -> Master | None:
    """Return the boot's master named in the environment if it is this process's live
    parent or this process itself; None otherwise.

    A restarted server that inherits an old boot id (and its master's name) finds that
    master dead, or another process under its pid: the name does not match. The master
    must also share this process's process group, as gunicorn's and the autoreloader's
    children do: a service manager puts each service in a group of its own, so it cannot
    be named master of the service it restarts.
    """
    claimed = Master.parse(os.environ.get(BOOT_MASTER_ENV, ""))
    if claimed is None or claimed.pid not in (os.getppid(), os.getpid()):
        return None
    if not in_my_process_group(claimed.pid):
        return None
    if not claimed.same_process(live_process(claimed.pid)):
        return None
    # The master's pid and start time can be faked; its secret cannot be guessed.
    secret = _Secret.value if claimed.pid == os.getpid() else inherited_secret()
    if not claimed.secret_hash or not hmac.compare_digest(secret_hash(secret), claimed.secret_hash):
        return None
    return claimed


def inherited_boot() -> tuple[NodeIdentity, Master] | None:
    """Return the boot id this process may join and its master, from the environment.

    None when there is no boot id, or its master is not this process's live parent (or
    this process): then this process must start a boot of its own.
    """
    boot_id = os.environ.get(BOOT_ID_ENV)
    master = inherited_master()
    if not boot_id or master is None:
        return None
    try:
        return NodeIdentity(settings.NODE_NAME, uuid.UUID(boot_id)), master
    except ValueError:
        return None


def process_boot() -> tuple[NodeIdentity, Master]:
    """Return the boot this process belongs to: the inherited one, or a new one it masters."""
    inherited = inherited_boot()
    if inherited is not None:
        return inherited
    if os.environ.get(BOOT_ID_ENV):
        log.warning(
            "Ignoring the inherited boot id %s: it names no master that is this process's "
            "live parent; starting a new boot",
            os.environ[BOOT_ID_ENV],
        )
    return NodeIdentity(settings.NODE_NAME, new_boot()), this_process()


def this_node() -> NodeIdentity:
    """Return this node's name and the boot id this process holds (made here if none).

    It does not check the boot's master: server processes join through
    lifecycle.start_process(), which does, and then hold the boot id they joined.
    """
    boot_id = os.environ.get(BOOT_ID_ENV)
    if not boot_id:
        return NodeIdentity(settings.NODE_NAME, new_boot())
    return NodeIdentity(settings.NODE_NAME, uuid.UUID(boot_id))


def successor(node: NodeIdentity) -> NodeIdentity:
    """Return the identity of the node's next life after its lease died.

    Derived, not random: every worker of the node that finds the lease dead computes the
    same next boot id, so they all join one new lease instead of starting one each.
    """
    return NodeIdentity(node.name, uuid.uuid5(node.boot_id, _NEXT_LIFE))
