"""The Registration page says what is true and offers one next step: a code-entry lock is
not a lost registration, the restart page has one primary action, the countdown reads as
minutes and seconds, and nothing covers the QR code."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import dateformat

from licserver.templatetags.display import minutes_seconds, unix_seconds
from registration.cluster import lifecycle
from registration.flows.challenge import refresh_challenge
from registration.flows.code import Outcome, submit_code
from registration.flows.upload import upload_license
from registration.models import ChallengeState, QrChallenge
from tests.node_steps import node, register, state
from tests.phone_steps import wrong_code
from tests.test_pages import Page

pytestmark = pytest.mark.django_db

PAGE = reverse("registration:registration")
CODE = reverse("registration:code")


def body(client: Client, path: str = PAGE) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def state_text(html: str) -> str:
    return re.search(r'id="registration-state">\s*(.*?)\s*</p>', html, re.S).group(1)


def primaries(page: Page) -> list[str]:
    """The ids of the page's primary buttons and links."""
    return [
        e.attrs.get("id", "")
        for e in page.elements
        if e.tag in ("a", "button")
        and "primary" in e.attrs.get("class", "").split()
        and "disabled" not in e.attrs
    ]


def lock_code_entry() -> None:
    challenge = QrChallenge.objects.get(state=ChallengeState.OPEN)
    wrong = wrong_code(challenge)
    outcome = None
    while outcome != Outcome.WRONG_AND_LOCKED:
        outcome = submit_code(wrong).outcome


@pytest.fixture
def restarted(settings, frozen_clock, issue):
    """A registered single node that was killed and started again."""
    lifecycle.start_node(node("node-a"))
    register(issue()[1])
    frozen_clock.advance(seconds=settings.NODE_LEASE_SECONDS)
    lifecycle.start_node(node("node-a"))
    assert state() == "expired_due_to_restart"


# --- A lock is not a lost registration ------------------------------------------------


def test_a_registered_server_with_code_entry_locked_still_says_registered(
    manager_client, frozen_clock, issue
):
    register(issue()[1])
    assert refresh_challenge().challenge is not None  # a QR code on a Registered server
    lock_code_entry()
    frozen_clock.advance(minutes=3)

    html = body(manager_client)

    assert state_text(html) == "Registered"
    assert "state-locked" not in html
    page = Page(html)
    lock = page.by_id("lock-message")
    assert lock is not None and lock.attrs["role"] == "alert"
    assert "Code entry locked until 12:15:00" in html
    assert "Submissions are locked until 12:15:00 UTC (server time)." in html
    # Beside the code entry it concerns: no QR code to scan, no field or Submit to use.
    assert page.by_id("qr-image") is None and page.by_id("challenge-link") is None
    assert "disabled" in page.by_id("id_code").attrs
    assert "disabled" in page.by_id("submit-code").attrs
    assert html.index('id="registration-state"') < html.index('id="lock-message"')


def test_an_unregistered_server_with_code_entry_locked_says_unregistered(
    manager_client, frozen_clock, issue
):
    _, text = issue()
    manager_client.post(
        reverse("registration:upload"),
        {"auth_method": "container", "license": _file(text)},
    )
    lock_code_entry()

    html = body(manager_client)

    assert state_text(html) == "Unregistered"
    assert "Code entry locked until 12:15:00" in html
    assert 'id="qr-image"' not in html
    frozen_clock.advance(minutes=15)
    html = body(manager_client)
    assert "locked until" not in html
    # Reopened: the QR code has run out meanwhile, so Refresh makes a new one.
    assert 'id="refresh"' in html and "disabled" not in html


def _file(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("Container.lic", text.encode())


# --- After a restart: the reminder, and one next step ---------------------------------


def test_the_registration_page_after_a_restart_shows_the_reminder_and_one_primary_action(
    manager_client, restarted
):
    html = body(manager_client)
    page = Page(html)

    alert = page.by_id("restart-alert")
    assert alert is not None and alert.attrs["role"] == "alert"
    assert (
        "Your project registration has expired due to project restart. "
        "Enter registration management and authenticate again."
    ) in html
    # At the top, before the state panel.
    assert html.index('id="restart-alert"') < html.index('id="state-heading"')
    assert primaries(page) == ["re-register"]
    assert page.by_id("re-register").attrs["aria-describedby"] == "re-register-hint"
    assert "No upload needed." in html
    assert page.by_id("register-now").attrs["aria-describedby"] == "register-now-hint"
    assert "primary" not in page.by_id("register-now").attrs["class"]
    # Refresh only when a QR code is shown.
    assert page.by_id("refresh") is None
    assert 'id="restart-reminder"' not in html  # no modal over where it leads


def test_after_re_register_the_qr_code_has_refresh_with_what_it_does(manager_client, restarted):
    manager_client.post(reverse("registration:challenge"))

    html = body(manager_client)
    page = Page(html)

    assert page.by_id("restart-alert") is not None
    assert page.by_id("re-register") is None  # Refresh does the same now
    assert page.by_id("refresh").attrs["aria-describedby"] == "refresh-hint"
    assert "primary" not in page.by_id("refresh").attrs.get("class", "")
    assert primaries(page) == ["submit-code"]


# --- The countdown ------------------------------------------------------------------


def test_the_countdown_reads_as_minutes_and_seconds_with_sparing_announcements(
    manager_client, frozen_clock, issue
):
    _, text = issue()
    manager_client.post(
        reverse("registration:upload"), {"auth_method": "container", "license": _file(text)}
    )
    frozen_clock.advance(seconds=1)

    page = Page(body(manager_client))

    countdown = page.by_id("countdown")
    box = next(e for e in page.elements if "data-countdown" in e.attrs)
    assert box.attrs["data-seconds"] == "299"
    assert 'id="countdown">4:59<' in page.body
    assert "Valid for 4:59" in re.sub(r"<[^>]+>", "", page.body)
    assert "seconds" not in re.sub(r"<[^>]+>", "", page.body.split('id="countdown"')[1])[:20]
    assert "aria-live" not in countdown.attrs  # not read out every second
    announce = page.by_id("countdown-announce")
    assert announce.attrs["aria-live"] == "polite"
    assert "visually-hidden" in announce.attrs["class"]
    assert box.attrs["data-say-minutes"] == "{n} minutes left"
    assert box.attrs["data-say-seconds"] == "{n} seconds left"


@pytest.mark.parametrize(
    ("seconds", "text"), [(300, "5:00"), (299, "4:59"), (61, "1:01"), (5, "0:05"), (0, "0:00")]
)
def test_minutes_seconds(seconds, text):
    assert minutes_seconds(seconds) == text


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 2, 1, 22, 27, 45, tzinfo=UTC),
        datetime(2024, 2, 1, 22, 27, 45, 999_999, tzinfo=UTC),
        datetime(2024, 2, 1, 22, 27, 45, tzinfo=timezone(timedelta(hours=8))),
        datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
    ],
)
def test_unix_seconds_writes_what_the_date_filter_writes(moment):
    assert unix_seconds(moment) == dateformat.format(moment, "U")
    assert unix_seconds(datetime(2024, 2, 1, 22, 27, 45, tzinfo=UTC)) == "1706826465"
    assert unix_seconds(None) == "" and unix_seconds("2024-02-01") == ""
    assert unix_seconds(date(2024, 2, 1)) == dateformat.format(date(2024, 2, 1), "U")


# --- Nothing covers the QR code; a favicon -------------------------------------------


def test_the_qr_code_page_has_no_watermark_and_the_qr_sits_above_any(
    manager_client, frozen_clock, issue
):
    _, text = issue()
    manager_client.post(
        reverse("registration:upload"), {"auth_method": "container", "license": _file(text)}
    )

    html = body(manager_client)

    assert 'id="qr-image"' in html and 'id="unregistered-watermark"' not in html
    site = Path(finders.find("registration/site.css")).read_text(encoding="utf-8")
    gate = Path(finders.find("registration/gate.css")).read_text(encoding="utf-8")
    assert re.search(r"\.qr img \{[^}]*z-index: 60", site)
    assert re.search(r"\.watermark \{[^}]*z-index: 50", gate)


@pytest.mark.parametrize("path", [PAGE, reverse("registration:version"), reverse("login")])
def test_every_page_has_a_favicon(manager_client, frozen_clock, path):
    page = Page(body(manager_client, path))

    icon = next(e for e in page.all("link") if e.attrs.get("rel") == "icon")
    assert finders.find(icon.attrs["href"].removeprefix("/static/"))


def test_the_admin_and_the_phone_page_have_the_favicon_too(
    admin_client, client, frozen_clock, issue
):
    admin = admin_client.get(reverse("admin:index")).content.decode()
    assert 'rel="icon" href="/static/registration/favicon.svg"' in admin
    _, text = issue()
    challenge = upload_license(text.encode(), "container").challenge
    phone = client.get(reverse("phone:verify", kwargs={"token": challenge.token})).content.decode()
    assert 'rel="icon" href="/static/registration/favicon.svg"' in phone
