"""/healthz and /metrics: never behind login or the gate; metrics behind a bearer token."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from registration.flows.challenge import refresh_challenge
from registration.flows.code import Outcome, submit_code
from tests.gate_steps import lock, register, restart, upload
from tests.phone_steps import wrong_code
from tests.processes import closed_port_env

ROOT = Path(__file__).resolve().parent.parent
HEALTHZ = reverse("healthz")
METRICS = reverse("metrics")
TOKEN = "metrics-token-for-tests-0123456789"
STATES = [
    "unregistered",
    "registered",
    "expired_due_to_restart",
    "license_expired",
    "locked",
    "not_admitted",
]
# One sample line of the text exposition format 0.0.4.
SAMPLE = re.compile(r'[a-z_]+(\{[a-z_]+="[^"\\]*"\})? -?[0-9]+')

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


# --- /healthz -----------------------------------------------------------------------


def test_healthz_answers_anonymous_in_any_state(
    client, frozen_clock, issue, django_capture_on_commit_callbacks
):
    def check() -> None:
        response = client.get(HEALTHZ)
        assert response.status_code == 200
        assert response.content == b"ok\n"
        assert response["Content-Type"] == "text/plain; charset=utf-8"
        assert "no-store" in response["Cache-Control"]

    check()
    register(django_capture_on_commit_callbacks, issue)
    check()
    restart(django_capture_on_commit_callbacks)
    check()


def test_healthz_head_and_methods(client, frozen_clock):
    assert client.head(HEALTHZ).status_code == 200
    assert client.post(HEALTHZ).status_code == 405
    assert Client(enforce_csrf_checks=True).post(HEALTHZ).status_code == 405


HEALTHZ_SCRIPT = """
import sys, django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
response = Client().get("/healthz")
sys.stdout.write(f"{response.status_code} {response.content.decode()}")
"""


@pytest.mark.processes
def test_healthz_503_when_the_database_does_not_answer(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", HEALTHZ_SCRIPT],
        cwd=ROOT,
        env=closed_port_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout == "503 database unavailable\n", done.stderr[-2000:]


# --- /metrics -----------------------------------------------------------------------


def scrape(client: Client | None = None, token: str = TOKEN):
    return (client or Client()).get(METRICS, HTTP_AUTHORIZATION=f"Bearer {token}")


def samples(body: str) -> dict[str, str]:
    """Map each sample's name and labels to its value, checking every line's syntax."""
    found: dict[str, str] = {}
    for line in body.splitlines():
        if line.startswith("#"):
            assert re.fullmatch(r"# (HELP|TYPE) [a-z_]+ .+", line), line
            continue
        assert SAMPLE.fullmatch(line), line
        name, value = line.rsplit(" ", 1)
        found[name] = value
    return found


@pytest.mark.parametrize("token", ["", "wrong", TOKEN + "x"])
def test_metrics_without_the_right_token_401(frozen_clock, token):
    response = scrape(token=token)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert Client().get(METRICS).status_code == 401


def test_metrics_off_while_no_token_is_set(frozen_clock, settings):
    settings.METRICS_TOKEN = ""
    assert scrape(token="").status_code == 401


def test_metrics_is_not_opened_by_a_session(manager_client, frozen_clock):
    assert manager_client.get(METRICS).status_code == 401


def test_metrics_methods(frozen_clock):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    assert Client(enforce_csrf_checks=True).post(METRICS, **headers).status_code == 405


def test_metrics_unregistered(frozen_clock):
    response = scrape()
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode()
    assert "# TYPE licserver_registration_state gauge" in body
    assert "# TYPE licserver_challenges_issued_total counter" in body
    assert samples(body) == {
        **{f'licserver_registration_state{{state="{s}"}}': "0" for s in STATES},
        'licserver_registration_state{state="unregistered"}': "1",
        "licserver_live_nodes": "1",
        "licserver_max_nodes": "0",
        "licserver_failed_attempts": "0",
        "licserver_lock_active": "0",
        "licserver_challenges_issued_total": "0",
    }


def test_metrics_registered(frozen_clock, issue, django_capture_on_commit_callbacks):
    register(django_capture_on_commit_callbacks, issue, max_nodes=3)
    found = samples(scrape().content.decode())
    assert found['licserver_registration_state{state="registered"}'] == "1"
    assert sum(int(found[f'licserver_registration_state{{state="{s}"}}']) for s in STATES) == 1
    assert found["licserver_license_days_left"] == "244"
    assert found["licserver_max_nodes"] == "3"
    assert found["licserver_live_nodes"] == "1"
    assert found["licserver_challenges_issued_total"] == "1"


def test_metrics_count_failures_lock_and_challenges(
    frozen_clock, issue, django_capture_on_commit_callbacks
):
    _lic, text = issue()
    challenge = upload(django_capture_on_commit_callbacks, text)
    with django_capture_on_commit_callbacks(execute=True):
        assert submit_code(wrong_code(challenge)).outcome == Outcome.WRONG
    found = samples(scrape().content.decode())
    assert found["licserver_failed_attempts"] == "1"
    assert found["licserver_lock_active"] == "0"
    with django_capture_on_commit_callbacks(execute=True):
        refresh_challenge()
    assert samples(scrape().content.decode())["licserver_challenges_issued_total"] == "2"


def test_metrics_lock_active(frozen_clock, issue, django_capture_on_commit_callbacks):
    lock(django_capture_on_commit_callbacks, issue)
    found = samples(scrape().content.decode())
    assert found["licserver_lock_active"] == "1"
    assert found['licserver_registration_state{state="locked"}'] == "1"
    assert found["licserver_failed_attempts"] == "5"
    frozen_clock.advance(minutes=15)
    found = samples(scrape().content.decode())
    assert found["licserver_lock_active"] == "0"
    assert found['licserver_registration_state{state="unregistered"}'] == "1"
