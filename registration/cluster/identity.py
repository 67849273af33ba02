"""Who this node is: NODE_NAME plus a boot id that is new each time the node starts.

The boot id is shared by all of the node's worker processes: the process that starts the
node (the gunicorn master, the development server's outer process) makes it and passes it
on in the environment (LICSERVER_BOOT_ID). See docs/cluster.md.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

from django.conf import settings

BOOT_ID_ENV = "LICSERVER_BOOT_ID"
# Namespace text for the next life's boot id (see successor()).
_NEXT_LIFE = "licserver-next-life"


@dataclass(frozen=True)
class NodeIdentity:
    name: str
    boot_id: uuid.UUID

    def __str__(self) -> str:
        return f"{self.name} (boot {self.boot_id})"


def this_node() -> NodeIdentity:
    """Return this node's name and boot id (the boot id is shared by all its workers)."""
    boot_id = os.environ.get(BOOT_ID_ENV)
    if not boot_id:
        boot_id = str(uuid.uuid4())
        os.environ[BOOT_ID_ENV] = boot_id
    return NodeIdentity(settings.NODE_NAME, uuid.UUID(boot_id))


def successor(node: NodeIdentity) -> NodeIdentity:
    """Return the identity of the node's next life after its lease died.

    Derived, not random: every worker of the node that finds the lease dead computes the
    same next boot id, so they all join one new lease instead of starting one each.
    """
    return NodeIdentity(node.name, uuid.uuid5(node.boot_id, _NEXT_LIFE))
