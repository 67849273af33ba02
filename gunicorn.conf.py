"""Gunicorn settings for licserver: `gunicorn -c gunicorn.conf.py licserver.wsgi`.

The master makes the node's boot id before any worker forks, as the boot's master, so
every worker of this node (and every worker that replaces one) joins it; a new master is a
new start of the node, whatever boot id its environment holds. The master releases the
node's lease when it exits cleanly. See docs/cluster.md.
"""

import os

from registration.cluster import identity

bind = [f"{os.environ.get('BIND', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "10"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
# Workers load the app after the fork; each opens its own database connections.
preload_app = False
# No runtime control socket: it would be shared by every node on one machine.
control_socket_disable = True


def on_starting(server):
    """Make a new boot id, mastered by this process, before any worker forks."""
    boot_id = identity.new_boot()
    server.log.info("Node boot id %s (master %s)", boot_id, os.environ[identity.BOOT_MASTER_ENV])


def post_worker_init(worker):
    """Attach the worker to its node's lease (licserver.wsgi did it already; idempotent)."""
    from licserver import processes

    processes.start_server_process()


def on_exit(server):
    """Release the node's lease at a clean stop, after the workers are gone."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "licserver.settings")
    import django

    django.setup()
    from licserver import processes

    processes.release_server_process()
