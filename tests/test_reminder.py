"""The strong reminder after a restart: on every page, only for registration managers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import Client, RequestFactory
from django.urls import reverse

from registration import context_processors, status
from registration.installation import get_installation
from registration.models import Installation, RegistrationState
from tests.node_steps import register

pytestmark = pytest.mark.django_db

TEXT = (
    "Your project registration has expired due to project restart. "
    "Enter registration management and authenticate again."
)
PAGE = reverse("registration:registration")
VERSION = reverse("registration:version")


@pytest.fixture(autouse=True)
def _registered(issue):
    """A registered installation; tests move it to the state they need."""
    register(issue()[1])


def set_state(value: str) -> None:
    installation = get_installation()
    Installation.objects.filter(pk=installation.pk).update(state=value)
    status.invalidate()


def has_modal(body: str) -> bool:
    return 'id="restart-reminder"' in body and TEXT in body


@pytest.fixture
def staff_manager_client(django_user_model) -> Client:
    """A staff user (Django admin access) who may manage registration."""
    user = django_user_model.objects.create_user("ops", password="pw-ops-12345", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="manage_registration"))
    client = Client()
    client.force_login(user)
    return client


def test_console_pages_carry_the_modal_with_authenticate_after_a_restart(manager_client):
    set_state(RegistrationState.EXPIRED_DUE_TO_RESTART)
    body = manager_client.get(VERSION).content.decode()
    assert has_modal(body)
    assert f'id="authenticate" href="{PAGE}"' in body
    assert ">Authenticate</a>" in body


def test_django_admin_pages_carry_the_modal_too(staff_manager_client):
    set_state(RegistrationState.EXPIRED_DUE_TO_RESTART)
    for path in (reverse("admin:index"), reverse("admin:password_change")):
        body = staff_manager_client.get(path).content.decode()
        assert has_modal(body), path
        assert "registration/reminder.css" in body


def test_the_registration_page_offers_re_register_instead_of_the_modal(manager_client):
    set_state(RegistrationState.EXPIRED_DUE_TO_RESTART)
    body = manager_client.get(PAGE).content.decode()
    assert not has_modal(body)
    assert 'id="re-register"' in body


@pytest.mark.parametrize("state", [RegistrationState.REGISTERED, RegistrationState.UNREGISTERED])
def test_no_modal_unless_expired_due_to_restart(staff_manager_client, state):
    set_state(state)
    assert not has_modal(staff_manager_client.get(reverse("admin:index")).content.decode())


def test_users_without_the_permission_never_see_it(staff_client):
    set_state(RegistrationState.EXPIRED_DUE_TO_RESTART)
    response = staff_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert not has_modal(response.content.decode())
    assert not has_modal(staff_client.get(VERSION).content.decode())  # 403 page


def test_anonymous_pages_never_show_it():
    set_state(RegistrationState.EXPIRED_DUE_TO_RESTART)
    assert not has_modal(Client().get(reverse("login")).content.decode())


class Untouchable:
    """A request.user that fails the test if anything asks it."""

    def __getattr__(self, name):
        raise AssertionError(f"user.{name} was read while the registration is not expired")


def test_the_usual_page_costs_one_cache_lookup_and_no_user_check(django_assert_num_queries):
    set_state(RegistrationState.REGISTERED)
    status.cached_snapshot()  # warm, as any earlier request leaves it
    request = RequestFactory().get("/")
    request.user = Untouchable()
    with django_assert_num_queries(0):
        assert context_processors.console(request)["restart_reminder"] is False


def test_the_answer_is_kept_for_the_rest_of_the_request(manager, django_assert_num_queries):
    set_state(RegistrationState.EXPIRED_DUE_TO_RESTART)
    request = RequestFactory().get("/")
    request.user = manager
    assert context_processors.console(request)["restart_reminder"] is True
    cache.clear()  # a second lookup would now need the database
    with django_assert_num_queries(0):
        assert context_processors.console(request)["restart_reminder"] is True
