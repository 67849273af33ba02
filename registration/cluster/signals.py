"""The ``project_started`` signal: announces that a node has begun a new life.

Where it is sent: only by ``registration.cluster.lifecycle`` (``start_node()``, called by
every server process as it starts, and ``heartbeat()`` when a node's lease died), once per
life of a node, after the start is fully recorded: the new lease exists, its admission is
decided, and a lone restart has already expired the registration. It announces; it does
no part of the start, so a node starts the same with no receiver connected.

What receivers get: they run inside the start's transaction, with the installation's row
lock held, so they see the new lease and must be quick; a receiver that raises aborts the
start (the process retries at its next heartbeat). Keyword arguments:

- ``node``: the NodeIdentity (name, boot id) of the new life;
- ``lease``: its NodeLease row;
- ``installation``: the locked Installation row, as the start left it;
- ``expired_registration``: whether this start expired the registration (all nodes of the
  cluster had restarted);
- ``now``: the database's time.
"""

from __future__ import annotations

from django.dispatch import Signal

project_started = Signal()
