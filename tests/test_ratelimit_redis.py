"""Rate limits in Redis: one budget for every node, and closed when Redis is down.

When the cache cannot be reached the limited views answer without running (fail closed),
and the code lockout, which lives in the database, still holds.
"""

from __future__ import annotations

import os

import pytest
from django.core.cache import caches
from django.test import Client, override_settings
from django.urls import reverse

from registration import status
from registration.authority.models import AuditAction, AuditEvent, Binding
from registration.flows.code import Outcome, submit_code
from registration.flows.upload import upload_license
from registration.models import (
    ChallengeState,
    Installation,
    QrChallenge,
    RegistrationState,
)
from tests.conftest import needs_redis
from tests.phone_steps import phone_code, wrong_code

pytestmark = [needs_redis, pytest.mark.redis, pytest.mark.django_db]

# Nothing listens on port 1: connecting is refused at once.
DEAD_REDIS = "redis://127.0.0.1:1/0"
LIMIT = 3
CLIENT = "198.51.100.7"


def redis_cache(url: str) -> dict:
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }


@pytest.fixture
def two_nodes(settings):
    """Two separate clients of the test Redis: "default" is this node, "other" another."""
    url = os.environ["CACHE_URL"]
    settings.CACHES = {"default": redis_cache(url), "other": redis_cache(url)}
    settings.RATE_PHONE = f"{LIMIT}/h"
    caches["default"].clear()
    yield
    caches["default"].clear()
    caches["other"].close()


@pytest.fixture
def redis_down(settings):
    """Point the cache at a port where no Redis listens, for this test only.

    override_settings (not the settings fixture) so the real cache is back before the
    shared fixture clears it at teardown.
    """
    settings.RATE_PHONE = settings.RATE_CODE = "1000/h"
    with override_settings(CACHES={"default": redis_cache(DEAD_REDIS)}):
        yield


@pytest.fixture
def open_challenge(frozen_clock, issue) -> QrChallenge:
    """An uploaded license with its open QR challenge (uploaded while the cache is up)."""
    _lic, text = issue()
    result = upload_license(text.encode(), "container")
    assert result.accepted, result.validation.codes
    return result.challenge


def phone(client: Client, token: str = "not-a-token") -> int:
    return client.get(reverse("phone:verify", args=[token]), REMOTE_ADDR=CLIENT).status_code


# --- Shared between nodes ---------------------------------------------------------------


def test_the_limit_is_one_budget_across_two_nodes(two_nodes, settings, client: Client):
    assert caches["default"] is not caches["other"]
    settings.RATELIMIT_USE_CACHE = "default"
    first = [phone(client) for _ in range(2)]
    settings.RATELIMIT_USE_CACHE = "other"
    second = [phone(client) for _ in range(2)]

    assert 429 not in first
    # The other node saw the first node's two requests: its second one is the 4th.
    assert second[0] != 429
    assert second[1] == 429


def test_the_other_node_sees_a_client_limited_on_the_first(two_nodes, settings, client):
    settings.RATELIMIT_USE_CACHE = "default"
    for _ in range(LIMIT):
        assert phone(client) != 429
    assert phone(client) == 429

    settings.RATELIMIT_USE_CACHE = "other"
    assert phone(client) == 429


# --- Redis down ---------------------------------------------------------------------------


def test_the_dead_cache_really_is_unreachable(redis_down):
    from redis.exceptions import ConnectionError as RedisConnectionError

    with pytest.raises(RedisConnectionError):
        caches["default"].get("anything")


def test_the_phone_page_fails_closed(redis_down, open_challenge, client: Client):
    response = client.get(reverse("phone:verify", args=[open_challenge.token]))

    assert response.status_code in (429, 503)
    assert b"Traceback" not in response.content
    # The view did not run: nothing was bound and no code was shown.
    assert not Binding.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.CODE_SHOWN).exists()


def test_code_submission_fails_closed(redis_down, open_challenge, manager_client: Client):
    response = manager_client.post(
        reverse("registration:code"), {"code": phone_code(open_challenge)}
    )

    assert response.status_code in (429, 503)
    assert Installation.objects.get().state == RegistrationState.UNREGISTERED
    assert QrChallenge.objects.get(pk=open_challenge.pk).state == ChallengeState.OPEN


@pytest.mark.parametrize(
    ("name", "data"), [("upload", {"auth_method": "container"}), ("challenge", {})]
)
def test_the_other_limited_console_views_fail_closed(
    redis_down, open_challenge, manager_client: Client, name, data
):
    response = manager_client.post(reverse(f"registration:{name}"), data)

    assert response.status_code in (429, 503)
    # Refresh would have superseded the open challenge had the view run.
    assert QrChallenge.objects.get(pk=open_challenge.pk).state == ChallengeState.OPEN


def test_the_database_lockout_holds_without_the_cache(
    redis_down, open_challenge, django_capture_on_commit_callbacks
):
    wrong = wrong_code(open_challenge)
    outcomes = []
    for _ in range(5):
        # Commit callbacks run too: the status cache cannot be invalidated, and that
        # must not undo or hide the failure just counted.
        with django_capture_on_commit_callbacks(execute=True):
            outcomes.append(submit_code(wrong).outcome)

    assert outcomes == [Outcome.WRONG] * 4 + [Outcome.WRONG_AND_LOCKED]
    assert submit_code(phone_code(open_challenge)).outcome == Outcome.LOCKED
    installation = Installation.objects.get()
    assert installation.failed_attempts == 5
    assert installation.state == RegistrationState.UNREGISTERED


def test_the_status_falls_back_to_the_database(redis_down, open_challenge):
    snap = status.cached_snapshot()

    assert snap.state == RegistrationState.UNREGISTERED
    assert snap.license_id == str(open_challenge.license.license_id)


def test_console_pages_answer_without_the_cache(redis_down, open_challenge, manager_client):
    page = manager_client.get(reverse("registration:registration"))
    version = manager_client.get(reverse("registration:version"))
    reports = manager_client.get(reverse("reports"))

    assert page.status_code == 200
    assert version.status_code == 200
    # Not registered: the reports are closed, with the page that says why.
    assert reports.status_code == 403
