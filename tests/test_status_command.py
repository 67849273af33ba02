"""manage.py registration_status [--json]: what monitoring scripts read, and its exit status."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command

from registration.cluster import lifecycle
from registration.models import InstalledLicense, NodeLease
from tests.conftest import START
from tests.gate_steps import lock, register, restart
from tests.node_steps import node
from tests.processes import closed_port_env

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> tuple[int, str]:
    """Run the command in this process; return its exit status and output."""
    out = io.StringIO()
    try:
        call_command("registration_status", *args, stdout=out, stderr=io.StringIO())
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def fields(text: str) -> dict[str, str]:
    return dict(
        (label.strip(), value.strip())
        for label, value in (line.split(":", 1) for line in text.splitlines())
    )


@pytest.mark.django_db
def test_unregistered_exits_1(frozen_clock):
    code, out = run()
    assert code == 1
    assert fields(out) == {
        "State": "unregistered",
        "License ID": "-",
        "Company": "-",
        "Project": "-",
        "Expiry": "-",
        # Run beside the servers, the command counts live leases only; none here.
        "Nodes": "0 of 0",
        "Lock": "not locked (0 failed attempts)",
        "Reason": "This project is not registered.",
    }


@pytest.mark.django_db
def test_registered_exits_0(frozen_clock, issue, django_capture_on_commit_callbacks):
    lifecycle.start_node(node("node-a"))  # the server beside which the command runs
    register(django_capture_on_commit_callbacks, issue, max_nodes=2)
    code, out = run()
    assert code == 0
    assert fields(out) == {
        "State": "registered",
        "License ID": str(InstalledLicense.objects.get().license_id),
        "Company": "Acme Ltd",
        "Project": "Reports",
        "Expiry": "2027/01/31 (244 days left)",
        "Nodes": "1 of 2",
        "Lock": "not locked (0 failed attempts)",
    }


@pytest.mark.django_db
def test_json(frozen_clock, issue, django_capture_on_commit_callbacks):
    lifecycle.start_node(node("node-a"))  # the server beside which the command runs
    register(django_capture_on_commit_callbacks, issue)
    code, out = run("--json")
    assert code == 0
    document = json.loads(out)
    assert document["state"] == "registered"
    assert document["registered"] is True
    assert document["expires_at"] == "2027-01-31"
    assert document["days_left"] == 244
    assert (document["nodes_used"], document["max_nodes"]) == (1, 1)
    assert (document["lock_active"], document["failed_attempts"]) == (False, 0)
    assert document["license_id"] == str(InstalledLicense.objects.get().license_id)


@pytest.mark.django_db
def test_expired_due_to_restart_exits_1(frozen_clock, issue, django_capture_on_commit_callbacks):
    register(django_capture_on_commit_callbacks, issue)
    restart(django_capture_on_commit_callbacks)
    code, out = run("--json")
    assert (code, json.loads(out)["state"]) == (1, "expired_due_to_restart")


@pytest.mark.django_db
def test_license_expired_exits_1(frozen_clock, issue, django_capture_on_commit_callbacks):
    register(django_capture_on_commit_callbacks, issue)
    frozen_clock.set(datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC))
    assert run()[0] == 0
    frozen_clock.set(datetime(2027, 2, 1, tzinfo=UTC))
    code, out = run()
    assert code == 1
    assert fields(out)["State"] == "license_expired"
    assert fields(out)["Expiry"] == "2027/01/31 (run out)"


@pytest.mark.django_db
def test_locked_exits_1(frozen_clock, issue, django_capture_on_commit_callbacks):
    lock(django_capture_on_commit_callbacks, issue)
    code, out = run()
    assert code == 1
    assert fields(out)["State"] == "locked"
    assert fields(out)["Lock"] == "locked until 2026/06/01 12:15:00 UTC"
    document = json.loads(run("--json")[1])
    assert (document["lock_active"], document["failed_attempts"]) == (True, 5)
    assert document["locked_until"] == "2026-06-01T12:15:00Z"


@pytest.mark.django_db
def test_node_without_a_seat_exits_1(frozen_clock, issue, django_capture_on_commit_callbacks):
    register(django_capture_on_commit_callbacks, issue)
    # This node (node-a) started while node-b held the only seat.
    for name, admitted in (("node-b", True), ("node-a", False)):
        NodeLease.objects.create(
            node_name=name,
            boot_id=uuid.uuid4(),
            started_at=START - timedelta(seconds=5),
            last_seen=START,
            admitted=admitted,
        )
    code, out = run()
    assert code == 1
    assert fields(out)["State"] == "not_admitted"
    assert "held by node-b" in fields(out)["Reason"]


COMMAND = [sys.executable, "manage.py", "registration_status"]


@pytest.mark.processes
@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_database_unreachable_exits_2(tmp_path, extra):
    done = subprocess.run(
        [*COMMAND, *extra],
        cwd=ROOT,
        env=closed_port_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout == ""
    assert done.stderr.startswith("Cannot read the registration status: OperationalError")
