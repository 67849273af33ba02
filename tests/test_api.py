"""GET /api/registration: bearer token, 200 in every state, a stable JSON schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse

from registration.models import InstalledLicense
from tests.gate_steps import lock, register, restart

API = reverse("api-registration")
TOKEN = "s3cret-token-for-tests-0123456789"
SCHEMA_KEYS = {
    "state",
    "registered",
    "license_id",
    "company",
    "project",
    "expires_at",
    "days_left",
    "nodes_used",
    "max_nodes",
    "locked_until",
    "message",
}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def api_token(settings):
    settings.REGISTRATION_API_TOKEN = TOKEN


def ask(client: Client | None = None, token: str | None = TOKEN, **headers: str):
    client = client or Client()
    if token is not None:
        headers.setdefault("HTTP_AUTHORIZATION", f"Bearer {token}")
    return client.get(API, **headers)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        TOKEN,
    ],
)
def test_without_the_right_token_401(frozen_clock, authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = Client().get(API, **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="registration"'
    assert response.json() == {"error": "unauthorized"}


def test_empty_token_setting_turns_the_endpoint_off(frozen_clock, settings):
    settings.REGISTRATION_API_TOKEN = ""
    assert ask(token="").status_code == 401
    assert Client().get(API).status_code == 401


def test_a_logged_in_session_is_not_a_token(manager_client, frozen_clock):
    assert ask(manager_client, token=None).status_code == 401


def test_scheme_is_case_insensitive(frozen_clock):
    assert ask(token=None, HTTP_AUTHORIZATION=f"bearer {TOKEN}").status_code == 200


def test_unregistered_is_200_with_the_schema(frozen_clock):
    response = ask()
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == SCHEMA_KEYS
    assert body == {
        "state": "unregistered",
        "registered": False,
        "license_id": None,
        "company": "",
        "project": "",
        "expires_at": None,
        "days_left": None,
        "nodes_used": 1,
        "max_nodes": 0,
        "locked_until": None,
        "message": "This project is not registered.",
    }


def test_never_cached_and_no_session(frozen_clock):
    response = ask()
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]
    assert "Set-Cookie" not in response.headers
    assert "Cookie" not in response.headers.get("Vary", "")


def test_registered(frozen_clock, issue, django_capture_on_commit_callbacks):
    register(django_capture_on_commit_callbacks, issue, company="Acme Ltd", max_nodes=2)
    body = ask().json()
    lic = InstalledLicense.objects.get()
    assert body == {
        "state": "registered",
        "registered": True,
        "license_id": str(lic.license_id),
        "company": "Acme Ltd",
        "project": "Reports",
        "expires_at": "2027-01-31",
        "days_left": 244,
        "nodes_used": 1,
        "max_nodes": 2,
        "locked_until": None,
        "message": "",
    }


def test_every_state_is_200(frozen_clock, issue, django_capture_on_commit_callbacks):
    register(django_capture_on_commit_callbacks, issue)
    restart(django_capture_on_commit_callbacks)
    response = ask()
    assert response.status_code == 200
    assert response.json()["state"] == "expired_due_to_restart"
    assert response.json()["registered"] is False


def test_locked_state_names_the_lock_end(frozen_clock, issue, django_capture_on_commit_callbacks):
    lock(django_capture_on_commit_callbacks, issue)
    body = ask().json()
    assert body["state"] == "locked"
    assert body["locked_until"] == "2026-06-01T12:15:00Z"


def test_license_expired_state(frozen_clock, issue, django_capture_on_commit_callbacks):
    register(django_capture_on_commit_callbacks, issue)
    frozen_clock.set(datetime(2027, 2, 1, tzinfo=UTC))
    body = ask().json()
    assert (body["state"], body["days_left"]) == ("license_expired", -1)
    assert body["message"] == "License expired on 2027/01/31"


def test_get_only_and_no_csrf(frozen_clock):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    # CSRF does not apply: a browser-like client's POST is refused for its method.
    browser = Client(enforce_csrf_checks=True)
    assert browser.post(API, **headers).status_code == 405
    assert Client().put(API, **headers).status_code == 405
    assert Client().delete(API, **headers).status_code == 405


def test_body_is_plain_json(frozen_clock):
    # Other services parse it with any JSON library: no JSONP, no prefix.
    assert json.loads(ask().content)["state"] == "unregistered"
