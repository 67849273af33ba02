"""Who may open the console pages, and how: login, permission, method and CSRF."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import get_resolver, reverse

from registration.flows.challenge import refresh_challenge
from registration.flows.upload import upload_license

pytestmark = pytest.mark.django_db

# (url name, kwargs, method that does the work)
READS = [("registration", {}), ("version", {}), ("qr", {"pk": 1})]
WRITES = [("upload", {}), ("challenge", {}), ("code", {})]
# A form page: GET shows it, POST handles it; both need the permission.
FORMS = [("license_request", {})]
ALL = [(n, k, "get") for n, k in READS + FORMS] + [(n, k, "post") for n, k in WRITES + FORMS]


def url(name: str, kwargs: dict) -> str:
    return reverse(f"registration:{name}", kwargs=kwargs)


@pytest.fixture
def challenge_pk(frozen_clock, issue) -> int:
    """An open challenge, so the QR image URL exists."""
    _, text = issue()
    result = upload_license(text.encode(), "container")
    assert result.accepted
    return result.challenge.pk


@pytest.mark.parametrize(("name", "kwargs", "method"), ALL)
def test_anonymous_is_sent_to_the_login_page(client: Client, name, kwargs, method):
    target = url(name, kwargs)

    response = getattr(client, method)(target)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={target}"


@pytest.mark.parametrize(("name", "kwargs", "method"), ALL)
def test_staff_without_the_permission_gets_403(staff_client: Client, name, kwargs, method):
    response = getattr(staff_client, method)(url(name, kwargs))

    assert response.status_code == 403
    assert b"Permission denied" in response.content


@pytest.mark.parametrize(("name", "kwargs"), WRITES)
def test_get_on_a_state_changing_url_is_405(manager_client: Client, name, kwargs):
    response = manager_client.get(url(name, kwargs))

    assert response.status_code == 405
    assert response["Allow"] == "POST"


@pytest.mark.parametrize(("name", "kwargs"), READS)
def test_post_on_a_read_only_url_is_405(manager_client: Client, name, kwargs):
    response = manager_client.post(url(name, kwargs))

    assert response.status_code == 405
    assert response["Allow"] == "GET"


def test_every_console_url_is_in_these_tests():
    names = {pattern.name for pattern in get_resolver("registration.urls").url_patterns}

    assert names == {name for name, _ in READS + WRITES + FORMS}


@pytest.mark.parametrize(("name", "kwargs"), WRITES + FORMS)
def test_post_without_a_csrf_token_is_403(csrf_client: Client, name, kwargs):
    response = csrf_client.post(url(name, kwargs), {"code": "123456"})

    assert response.status_code == 403


def test_post_with_the_csrf_token_passes(csrf_client: Client, frozen_clock, issue):
    """The same client gets through once it sends the token the page gave it."""
    page = csrf_client.get(url("registration", {}) + "?register=1")
    token = page.cookies["csrftoken"].value
    _, text = issue()

    response = csrf_client.post(
        url("upload", {}),
        {
            "auth_method": "container",
            "license": SimpleUploadedFile("Container.lic", text.encode()),
            "csrfmiddlewaretoken": token,
        },
    )

    assert response.status_code == 302


def test_manager_reads_every_page(manager_client: Client, challenge_pk):
    assert manager_client.get(url("registration", {})).status_code == 200
    assert manager_client.get(url("version", {})).status_code == 200
    image = manager_client.get(url("qr", {"pk": challenge_pk}))
    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"


def test_superuser_has_access_without_an_explicit_permission(django_user_model, challenge_pk):
    admin = django_user_model.objects.create_superuser("root", password="pw-root-1")
    client = Client()
    client.force_login(admin)

    assert client.get(url("registration", {})).status_code == 200
    assert client.get(url("version", {})).status_code == 200
    assert client.get(url("qr", {"pk": challenge_pk})).status_code == 200
    response = client.post(url("code", {}), {"code": "12a456"})
    assert response.status_code == 400


def test_qr_of_a_closed_or_unknown_challenge_is_404(manager_client: Client, challenge_pk):
    assert manager_client.get(url("qr", {"pk": challenge_pk + 1})).status_code == 404
    refresh_challenge()  # supersedes challenge_pk

    assert manager_client.get(url("qr", {"pk": challenge_pk})).status_code == 404


def test_version_page_shows_what_goes_into_a_license_request(manager_client: Client):
    response = manager_client.get(url("version", {}))

    body = response.content.decode()
    for element_id, value in [
        ("app-name", "ReportServer"),
        ("minor-version", "11.0"),
        ("build-version", "11.0.20"),
        ("build-date", "2024-02-01"),
        ("project-content", "reports"),
    ]:
        assert f'id="{element_id}">{value}<' in body
    assert "System Management" in body and "Registration Management" in body
