"""In a real browser: after a restart every console page an admin sees says so. Where they
land (the Registration page, after logging in or at /) it is an alert with Re-register;
elsewhere the modal with Authenticate, which Escape closes to a banner with the same
sentence, so the page behind (Version Information) stays usable.

The first test drives the live test server; the others restart real server processes (one
node on SQLite, then a two-node cluster on PostgreSQL and Redis) and log in afresh, in
English and in Chinese.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
from collections.abc import Iterator

import pytest
from django.utils import translation
from playwright.sync_api import Browser, Page, expect

from registration.cluster import lifecycle
from tests.browser import chromium, keep_screenshot, needs_chromium
from tests.conftest import needs_postgres, needs_redis
from tests.node_steps import node, register, state
from tests.phone_steps import shown_code
from tests.processes import (
    ADMIN,
    PASSWORD,
    Database,
    Server,
    free_port,
    issue_license,
    migrate_with_admin,
    scratch_database,
    server_env,
    start_gunicorn,
    wait_for,
)
from tests.processes import Browser as HttpBrowser

pytestmark = [pytest.mark.browser, needs_chromium]

MANAGER_PASSWORD = "pw-manager-1"  # the manager persona's password (tests/conftest.py)
REMINDER = (
    "Your project registration has expired due to project restart. "
    "Enter registration management and authenticate again."
)
LANGUAGES = [("en-US", "en"), ("zh-CN", "zh-hans")]
LEASE_SECONDS = 3


def reminder_in(language: str) -> str:
    with translation.override(language):
        return translation.gettext(REMINDER)


def log_in(page: Page, base: str, username: str, password: str) -> None:
    """Log in with the form, whatever the page's language, and wait for the landing page."""
    page.goto(f"{base}/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    with page.expect_navigation():
        page.locator("main form button[type=submit]").click()


def check_reminders(
    browser: Browser, base: str, locale: str, language: str, name: str, *, re_register: bool
) -> None:
    """A fresh login after a restart: the alert where the admin lands, the modal elsewhere
    (closed with Escape to a banner), and, with re_register, Re-register's QR code."""
    sentence = reminder_in(language)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=locale)
    context.set_default_timeout(10_000)
    page = context.new_page()
    log_in(page, base, ADMIN, PASSWORD)

    # Landed on the Registration page: the sentence as an alert, Re-register its one
    # primary action, and no modal covering it.
    expect(page).to_have_url(f"{base}/system/registration/")
    expect(page.locator("html")).to_have_attribute("lang", language)
    alert = page.locator("#restart-alert")
    expect(alert).to_be_visible()
    expect(alert).to_have_attribute("role", "alert")
    expect(alert).to_contain_text(sentence)
    expect(page.locator("#re-register")).to_be_visible()
    expect(page.locator("main .primary:visible")).to_have_count(1)
    expect(page.get_by_role("alertdialog")).to_have_count(0)
    keep_screenshot(page, f"reminder-{name}-{locale}-01-landing")

    # / leads to the same page.
    page.goto(f"{base}/")
    expect(page.locator("#restart-alert")).to_contain_text(sentence)

    # Any other console page: the modal; Escape leaves the banner, and the page works.
    page.goto(f"{base}/system/version/")
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(sentence)
    expect(page.locator("#authenticate")).to_be_focused()
    keep_screenshot(page, f"reminder-{name}-{locale}-02-modal")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    banner = page.locator("main #restart-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(sentence)
    expect(banner).to_be_focused()
    expect(page.locator("#installation-id")).to_be_visible()
    keep_screenshot(page, f"reminder-{name}-{locale}-03-banner")
    page.locator("#request-license").click()
    expect(page).to_have_url(f"{base}/system/version/request")
    expect(page.get_by_role("alertdialog")).to_be_visible()  # every page says it again

    # Authenticate, then Re-register: the QR code.
    page.locator("#authenticate").click()
    if not re_register:
        expect(page.locator("#restart-alert")).to_contain_text(sentence)
        context.close()
        return
    expect(page).to_have_url(f"{base}/system/registration/")
    page.locator("#re-register").click()
    qr = page.locator("#qr-image")
    expect(qr).to_be_visible()
    expect(qr).to_have_js_property("complete", True)
    expect(qr).not_to_have_js_property("naturalWidth", 0)
    expect(page.locator("#restart-alert")).to_contain_text(sentence)  # until the code is in
    context.close()


# --- In the live test server -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_reminder_leads_to_re_register(live_server, settings, frozen_clock, manager, issue):
    settings.AUTHORITY_BASE_URL = live_server.url
    lifecycle.start_node(node("node-a"))
    register(issue()[1])
    frozen_clock.advance(seconds=settings.NODE_LEASE_SECONDS)  # the node was killed
    lifecycle.start_node(node("node-a"))
    assert state() == "expired_due_to_restart"
    base = live_server.url

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(10_000)
        log_in(page, base, manager.username, MANAGER_PASSWORD)
        page.goto(f"{base}/system/version/")

        modal = page.get_by_role("alertdialog")
        expect(modal).to_be_visible()
        expect(modal).to_contain_text(REMINDER)
        keep_screenshot(page, "reminder-01-modal")
        modal.get_by_role("link", name="Authenticate").click()

        expect(page).to_have_url(f"{base}/system/registration/")
        expect(page.get_by_role("alertdialog")).to_have_count(0)
        expect(page.locator("#registration-state")).to_have_text("Expired due to restart")
        expect(page.locator("#restart-alert")).to_contain_text(REMINDER)
        page.get_by_role("button", name="Re-register").click()
        qr = page.locator("#qr-image")
        expect(qr).to_be_visible()
        expect(qr).to_have_js_property("complete", True)
        expect(qr).not_to_have_js_property("naturalWidth", 0)
        keep_screenshot(page, "reminder-02-re-register-qr")


@pytest.mark.django_db(transaction=True)
def test_the_close_button_closes_the_reminder_to_a_banner_too(
    live_server, settings, frozen_clock, manager, issue
):
    lifecycle.start_node(node("node-a"))
    register(issue()[1])
    frozen_clock.advance(seconds=settings.NODE_LEASE_SECONDS)
    lifecycle.start_node(node("node-a"))
    base = live_server.url

    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(10_000)
        log_in(page, base, manager.username, MANAGER_PASSWORD)
        page.goto(f"{base}/system/version/")
        page.keyboard.press("Tab")  # from Authenticate to Close
        expect(page.locator("#reminder-close")).to_be_focused()
        page.keyboard.press("Enter")

        expect(page.get_by_role("alertdialog")).to_be_hidden()
        expect(page.locator("main #restart-banner")).to_contain_text(REMINDER)
        # Nothing behind is inert any more: the page's own controls take the focus.
        page.locator("#request-license").focus()
        expect(page.locator("#request-license")).to_be_focused()


# --- Real server processes, restarted ------------------------------------------------------


def register_over_http(client: HttpBrowser, license_text: bytes) -> None:
    """Log in, upload, open the QR code's link as the phone does, and type its code."""
    client.login()
    status, page = client.upload(license_text)
    assert status == 200, page[:2000]
    link = re.search(r'<code id="challenge-link">([^<]+)</code>', page)
    assert link, page[:2000]
    status, phone = client.request(html.unescape(link.group(1)))
    code = shown_code(phone)
    assert status == 200 and code, phone[:800]
    status, page = client.post("/system/registration/code", {"code": code})
    assert status == 200 and "Registration successful." in page, page[:800]


@pytest.mark.processes
def test_after_a_real_restart_of_one_node_a_fresh_login_sees_the_reminder(key_dir, tmp_path):
    var = tmp_path / "var"
    env = server_env("", key_dir, var, WEB_CONCURRENCY="1")
    migrate_with_admin(env)
    license_text = issue_license(env, tmp_path / "Container.lic", max_nodes=1)
    port = free_port()
    server = start_gunicorn(env, tmp_path / "first.log", port=port)
    try:
        register_over_http(HttpBrowser(server.base), license_text)
        server.stop()  # the whole project stops: its one node
        server = start_gunicorn(env, tmp_path / "second.log", port=port)

        with chromium() as browser:
            for n, (locale, language) in enumerate(LANGUAGES):
                last = n == len(LANGUAGES) - 1
                check_reminders(
                    browser, server.base, locale, language, "one-node", re_register=last
                )
    finally:
        if server.running:
            server.kill()


@pytest.fixture
def cluster_database() -> Iterator[tuple[str, str]]:
    """A throwaway PostgreSQL database and a Redis database of this test's own."""
    with scratch_database("reminder") as url:
        cache_url = os.environ["CACHE_URL"]
        yield url, cache_url
        subprocess.run(["redis-cli", "-u", cache_url, "FLUSHDB"], check=False, capture_output=True)


@needs_postgres
@needs_redis
@pytest.mark.processes
def test_after_a_cluster_restart_a_fresh_login_on_either_node_sees_the_reminder(
    key_dir, tmp_path, cluster_database
):
    url, cache_url = cluster_database
    env = server_env(
        url,
        key_dir,
        tmp_path / "var",
        CACHE_URL=cache_url,
        NODE_HEARTBEAT_SECONDS="1",
        NODE_LEASE_SECONDS=str(LEASE_SECONDS),
        STATUS_CACHE_SECONDS="1",
        WEB_CONCURRENCY="1",
    )
    migrate_with_admin(env)
    license_text = issue_license(env, tmp_path / "Container.lic", max_nodes=2)
    database = Database(url)
    ports = {"a": free_port(), "b": free_port()}
    servers: dict[str, Server] = {}

    def start(name: str, run: int) -> None:
        log = tmp_path / f"{name}-{run}.log"
        servers[name] = start_gunicorn(dict(env, NODE_NAME=name), log, port=ports[name])

    def live() -> list[tuple]:
        return database.query(
            "SELECT node_name FROM registration_nodelease WHERE released_at IS NULL "
            "AND last_seen > clock_timestamp() - %s * interval '1 s'",
            LEASE_SECONDS,
        )

    try:
        start("a", 1)
        start("b", 1)
        register_over_http(HttpBrowser(servers["a"].base), license_text)
        # Every node crashes; once their leases have run out, both start again.
        for server in servers.values():
            server.kill()
        wait_for(lambda: not live(), "the killed nodes' leases to run out", timeout=15)
        start("a", 2)
        start("b", 2)
        assert database.query("SELECT state FROM registration_installation")[0][0] == (
            "expired_due_to_restart"
        )

        with chromium() as browser:
            check_reminders(
                browser, servers["b"].base, "en-US", "en", "cluster-b", re_register=False
            )
            check_reminders(
                browser, servers["a"].base, "zh-CN", "zh-hans", "cluster-a", re_register=True
            )
    finally:
        for server in servers.values():
            if server.running:
                server.kill()
