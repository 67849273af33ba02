"""Shared fixtures: vendor keys, a frozen clock, license factories and personas."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import Client

from licserver.env import keys_from_dir
from registration import clock
from registration.authority.registry import record_issued_license
from registration.protocol.causes import LocalFacts
from registration.protocol.keys import generate_key_pair_files, load_signing_key
from registration.protocol.license import License, sign_license

KID = "test-1"
START = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)

needs_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="needs PostgreSQL: set DATABASE_URL=postgres://... (row locks prove nothing on SQLite)",
)
needs_redis = pytest.mark.skipif(
    not os.environ.get("CACHE_URL", "").startswith("redis://"),
    reason="needs Redis: set CACHE_URL=redis://... (a shared cache proves nothing in LocMem)",
)


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory) -> Path:
    """A vendor key directory with two key ids, made once per test session."""
    directory = tmp_path_factory.mktemp("keys")
    generate_key_pair_files(directory, KID)
    generate_key_pair_files(directory, "test-0")
    return directory


@pytest.fixture(autouse=True)
def vendor_keys(settings, key_dir):
    """Pin the test keys in settings, as an operator would."""
    settings.LICENSE_PUBLIC_KEYS = keys_from_dir(key_dir, ".ed25519.pub")
    settings.AUTHORITY_PUBLIC_KEYS = keys_from_dir(key_dir, ".x25519.pub")
    settings.AUTHORITY_PRIVATE_KEY_FILES = keys_from_dir(key_dir, ".x25519.pem", content=False)
    settings.LICENSE_SIGNING_KEY_FILES = keys_from_dir(key_dir, ".ed25519.pem", content=False)
    settings.AUTHORITY_KID = KID
    settings.AUTHORITY_BASE_URL = "http://testserver"
    settings.NODE_NAME = "node-a"
    return key_dir


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def frozen_clock():
    """Freeze registration's clock at START; advance it with frozen_clock.advance(...)."""
    with clock.use(clock.FrozenClock(START)) as frozen:
        yield frozen


def make_license(**overrides) -> License:
    """A license that fits the default local facts, with fields overridden."""
    fields = dict(
        license_id=uuid.uuid4(),
        license_type="container",
        company="Acme Ltd",
        project_name="Reports",
        app_name="ReportServer",
        app_version="11.0",
        project_content="reports",
        contract_date=date(2026, 1, 15),
        issued_at=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        expires_at=date(2027, 1, 31),
        max_nodes=1,
        kid=KID,
    )
    fields.update(overrides)
    return License(**fields)


@pytest.fixture
def sign(key_dir):
    """sign(license, kid=KID) -> armored text."""

    def _sign(lic: License, kid: str = KID) -> str:
        key = load_signing_key(key_dir / f"{kid}.ed25519.pem")
        return sign_license(replace(lic, kid=kid), key, kid)

    return _sign


@pytest.fixture
def issue(sign):
    """issue(**fields) -> (License, text): sign a license and record it as the vendor does."""

    def _issue(**overrides) -> tuple[License, str]:
        lic = make_license(**overrides)
        text = sign(lic, lic.kid)
        record_issued_license(lic, text, at=lic.issued_at)
        return lic, text

    return _issue


def local_facts(**overrides) -> LocalFacts:
    fields = dict(
        app_name="ReportServer",
        app_version="11.0.20",
        project_content="reports",
        build_date=date(2024, 2, 1),
        min_build_date=date(2021, 10, 30),
        live_nodes=1,
        now=START,
    )
    fields.update(overrides)
    return LocalFacts(**fields)


# --- Personas -----------------------------------------------------------------------


@pytest.fixture
def manager(django_user_model):
    """An admin with the Registration Management permission (not a superuser)."""
    user = django_user_model.objects.create_user("manager", password="pw-manager-1")
    user.user_permissions.add(Permission.objects.get(codename="manage_registration"))
    return user


@pytest.fixture
def staff(django_user_model):
    """A staff user without the Registration Management permission."""
    return django_user_model.objects.create_user("staff", password="pw-staff-1", is_staff=True)


@pytest.fixture
def manager_client(manager) -> Client:
    client = Client()
    client.force_login(manager)
    return client


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def csrf_client(manager) -> Client:
    """A logged-in manager whose client enforces CSRF like a browser would."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    return client
