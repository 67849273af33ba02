"""The development server, as a node: one boot id for the whole run, released at exit.

The outer (autoreloader) process is the boot's master: it makes a new boot id at every
start, whatever its environment holds, and passes it on in the environment, so a code
reload, which starts a new inner process (its child), stays the same node's life. The
outer process releases the lease when it stops cleanly (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import os
import signal

from django.utils import autoreload
from whitenoise.runserver_nostatic.management.commands.runserver import (
    Command as RunserverCommand,
)

from registration.cluster import identity, lifecycle


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Command(RunserverCommand):
    def run(self, **options: object) -> None:
        outer = os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) != "true"
        if not outer:
            super().run(**options)
            return
        # Never an inherited boot id: starting the outer process is starting the node.
        identity.new_boot()
        # SIGTERM stops the server like Ctrl-C does, so the lease is released.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            super().run(**options)
        finally:
            lifecycle.stop_process()
            lifecycle.release_node()

    def inner_run(self, *args: object, **options: object) -> None:
        lifecycle.start_process()
        super().inner_run(*args, **options)
