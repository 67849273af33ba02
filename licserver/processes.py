"""Server process hooks: what each installed app does when a server process starts, and
when the process that owns a node's boot id exits cleanly.

An app takes part by giving its AppConfig start_server_process() and/or
release_server_process(); the console does (a server process is a node). Which apps are
installed is the settings' choice, so nothing here asks which role runs.
"""

from __future__ import annotations

from django.apps import apps


def start_server_process() -> None:
    """Call every installed app's start hook (idempotent per process)."""
    for config in apps.get_app_configs():
        hook = getattr(config, "start_server_process", None)
        if hook is not None:
            hook()


def release_server_process() -> None:
    """Call every installed app's release hook (at a clean stop; never raises)."""
    for config in apps.get_app_configs():
        hook = getattr(config, "release_server_process", None)
        if hook is not None:
            hook()
