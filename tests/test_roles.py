"""LICSERVER_ROLES: a process serves the console, the verification service, or both."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from django.conf import settings as live
from django.test import Client
from django.urls import clear_url_caches

import licserver.urls
from registration import flows

pytestmark = pytest.mark.django_db


@pytest.fixture
def roles(settings):
    """use_roles("authority") reloads the URLconf as a process with those roles would."""

    def use_roles(*names: str) -> None:
        settings.LICSERVER_ROLES = set(names)
        importlib.reload(licserver.urls)
        clear_url_caches()

    yield use_roles
    settings.LICSERVER_ROLES = {"console", "authority"}
    importlib.reload(licserver.urls)
    clear_url_caches()


@pytest.fixture
def token(frozen_clock, issue) -> str:
    _, text = issue()
    result = flows.upload_license(text.encode("ascii"), "container")
    assert result.accepted
    return result.challenge.token


def test_the_verification_service_alone_has_no_console(roles, token, manager_client, staff):
    roles("authority")

    assert Client().get(f"/m/{token}").status_code == 200
    assert Client().get("/healthz").status_code == 200
    for path in ("/system/registration/", "/system/version/", "/reports/", "/metrics"):
        assert manager_client.get(path).status_code == 404, path


def test_vendor_staff_pages_render_without_console_links(roles, manager_client, staff):
    roles("authority")
    client = Client()
    client.force_login(staff)

    missing = client.get("/no-such-page/")

    assert missing.status_code == 404
    body = missing.content.decode()
    assert "/system/registration/" not in body and "Registration Management" not in body


def test_the_console_alone_has_no_verification_service(roles, token, manager_client):
    roles("console")

    assert Client().get(f"/m/{token}").status_code == 404
    assert manager_client.get("/system/registration/").status_code == 200


def test_both_roles_by_default(token, manager_client):
    assert Client().get(f"/m/{token}").status_code == 200
    assert manager_client.get("/system/registration/").status_code == 200


def test_login_redirect_follows_the_roles(tmp_path):
    script = "from django.conf import settings; print(settings.LOGIN_REDIRECT_URL)"
    env = {"LICSERVER_ROLES": "authority", "LICSERVER_VAR_DIR": str(tmp_path), "PATH": ""}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django, os; os.environ.setdefault("
            f"'DJANGO_SETTINGS_MODULE', 'licserver.settings'); django.setup(); {script}",
        ],
        cwd=live.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "admin:index", result.stderr
    assert live.LOGIN_REDIRECT_URL == "registration:registration"
