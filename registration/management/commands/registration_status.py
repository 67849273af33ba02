"""Print the registration status for monitoring scripts."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from registration import clock, status
from registration.cluster import leases
from registration.gate import RegistrationValue, evaluate
from registration.models import Installation
from registration.protocol.text import format_date, format_datetime

EXIT_REGISTERED = 0
EXIT_NOT_REGISTERED = 1
EXIT_ERROR = 2


def this_node_seat(now) -> tuple[bool, tuple[str, ...]]:
    """Read from the leases whether this node's newest live lease holds a seat.

    A command runs in a process of its own, so the server's in-memory admission is not
    at hand; the lease the node wrote when it started says the same.
    """
    live = leases.live_leases(now)
    newest = live.filter(node_name=settings.NODE_NAME).order_by("-started_at").first()
    if newest is None or newest.admitted:
        return True, ()
    holders = live.filter(admitted=True).values_list("node_name", flat=True)
    return False, tuple(sorted(set(holders)))


def read_status() -> tuple[RegistrationValue, int]:
    """Return the registration value and the failed attempts, fresh from the database."""
    now = clock.now()
    admitted, holders = this_node_seat(now)
    value = evaluate(status.snapshot(as_server=False), now, admitted=admitted, seat_holders=holders)
    installation = Installation.objects.only("failed_attempts").first()
    return value, installation.failed_attempts if installation else 0


class Command(BaseCommand):
    help = (
        "Print the registration state, license, expiry, nodes and lock. Exit status: 0 "
        "when registered, 1 when not (unregistered, license expired, expired due to "
        "restart, locked, node not admitted), 2 on error (database unreachable)."
    )
    # Checks are not this command's business: a failing one must not read as "not
    # registered" (1) to a monitoring script.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print one JSON object."
        )

    def handle(self, *args: Any, as_json: bool = False, **options: Any) -> None:
        try:
            value, failed_attempts = read_status()
        except Exception as exc:  # any failure to read is "unknown", never "not registered"
            self.stderr.write(f"Cannot read the registration status: {exc.__class__.__name__}")
            sys.exit(EXIT_ERROR)
        if as_json:
            self._print_json(value, failed_attempts)
        else:
            self._print_text(value, failed_attempts)
        if not value.is_registered:
            sys.exit(EXIT_NOT_REGISTERED)

    def _print_json(self, value: RegistrationValue, failed_attempts: int) -> None:
        document = {
            **value.as_json(),
            "lock_active": value.lock_active,
            "failed_attempts": failed_attempts,
        }
        self.stdout.write(json.dumps(document, ensure_ascii=False, sort_keys=True))

    def _print_text(self, value: RegistrationValue, failed_attempts: int) -> None:
        none = "-"
        expiry = none
        if value.expires_at is not None:
            left = value.days_left or 0
            expiry = f"{format_date(value.expires_at)} " + (
                f"({left} days left)" if left >= 0 else "(run out)"
            )
        if value.lock_active:
            assert value.locked_until is not None
            lock = f"locked until {format_datetime(value.locked_until)} UTC"
        else:
            lock = f"not locked ({failed_attempts} failed attempts)"
        lines = [
            ("State", str(value.state)),
            ("License ID", value.license_id or none),
            ("Company", value.company or none),
            ("Project", value.project or none),
            ("Expiry", expiry),
            ("Nodes", f"{value.nodes_used} of {value.max_nodes}"),
            ("Lock", lock),
        ]
        if not value.is_registered:
            lines.append(("Reason", value.message()))
        for label, text in lines:
            self.stdout.write(f"{label + ':':<12}{text}")
