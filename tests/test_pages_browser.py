"""The pages in a real browser: the phone page at 360 px, countdowns that run out in place,
Refresh without a reload (and with JavaScript off), keyboard reach and focus."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, expect

from registration.cluster import lifecycle
from registration.flows.upload import upload_license
from registration.models import ChallengeState, QrChallenge
from registration.protocol.causes import AUTH_METHOD_CONTAINER
from tests.browser import chromium, keep_screenshot, needs_chromium
from tests.node_steps import node, register, state

pytestmark = [
    pytest.mark.browser,
    needs_chromium,
    # The live server thread must see the test's rows, so they are committed.
    pytest.mark.django_db(transaction=True),
]

PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "en-US",
}
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "en-US"}
# A company name with no place to break, as some contracts spell it.
LONG_COMPANY = "ShenzhenInternationalConsolidatedReportingTechnologiesCompanyLimited"
REGISTRATION = "/system/registration/"


@pytest.fixture
def live(live_server, settings, frozen_clock):
    """The live server, with QR codes pointing at its own verification service."""
    settings.AUTHORITY_BASE_URL = live_server.url
    return live_server


def open_challenge(issue, **fields) -> QrChallenge:
    _, text = issue(**fields)
    assert upload_license(text.encode(), AUTH_METHOD_CONTAINER).accepted
    return QrChallenge.objects.get(state=ChallengeState.OPEN)


def session_cookie(user) -> str:
    """Log user in without the login form (made before the browser starts: see chromium())."""
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def context(browser: Browser, base: str, options: dict, cookie: str | None = None, **extra):
    ctx: BrowserContext = browser.new_context(**options, **extra)
    ctx.set_default_timeout(10_000)
    if cookie:
        ctx.add_cookies([{"name": "sessionid", "value": cookie, "url": base}])
    return ctx


def page_width(page: Page) -> int:
    # Playwright evaluates in its own world: the page's CSP does not apply to it.
    return page.evaluate("document.documentElement.scrollWidth")


def focused_id(page: Page) -> str:
    return page.evaluate("document.activeElement ? document.activeElement.id : ''")


# --- The phone page at 360 px -------------------------------------------------------


@pytest.mark.parametrize(("locale", "lang"), [("en-US", "en"), ("zh-CN", "zh-hans")])
def test_phone_page_fits_360_px_with_the_code_in_large_digits(live, issue, locale, lang):
    challenge = open_challenge(issue, company=LONG_COMPANY)
    url = f"{live.url}/m/{challenge.token}"

    with chromium() as browser:
        page = context(browser, live.url, {**PHONE, "locale": locale}).new_page()
        page.goto(url)
        expect(page.locator("html")).to_have_attribute("lang", lang)

        code = page.locator("#verification-code")
        expect(code).to_have_text(re.compile(r"^\s*[0-9]{6}\s*$"))
        assert page_width(page) <= 360
        box = code.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 360
        size = float(code.evaluate("e => getComputedStyle(e).fontSize").removesuffix("px"))
        assert size >= 36, f"the code is {size}px high"
        company = page.get_by_text(LONG_COMPANY[:20], exact=False)
        company_box = company.bounding_box()
        assert company_box["x"] + company_box["width"] <= 360
        keep_screenshot(page, f"pages-phone-360-{locale}")


def test_phone_page_with_a_problem_fits_360_px(live, issue, frozen_clock):
    challenge = open_challenge(issue)
    frozen_clock.advance(minutes=5)

    with chromium() as browser:
        page = context(browser, live.url, PHONE).new_page()
        page.goto(f"{live.url}/m/{challenge.token}")

        expect(page.get_by_role("heading", level=1)).to_have_text("No verification code")
        assert page_width(page) <= 360


def test_phone_countdown_reaches_zero_and_says_the_code_expired(live, issue):
    challenge = open_challenge(issue)

    with chromium() as browser:
        page = context(browser, live.url, PHONE).new_page()
        page.clock.install()
        page.goto(f"{live.url}/m/{challenge.token}")
        expect(page.locator("#countdown")).to_have_text("5:00")
        expect(page.locator("#code-expired")).to_be_hidden()

        page.clock.run_for(299_000)
        expect(page.locator("#countdown")).to_have_text("0:01")
        expect(page.locator("#code-expired")).to_be_hidden()

        page.clock.run_for(1_000)
        expect(page.locator("#code-expired")).to_be_visible()
        expect(page.locator("#code-expired")).to_contain_text("This code has expired.")
        expect(page.locator("[data-countdown]")).to_be_hidden()
        expect(page.locator("#verification-code")).to_have_class(re.compile(r"\bexpired\b"))


# --- The console --------------------------------------------------------------------


def test_console_countdown_at_zero_asks_for_refresh(live, manager, issue):
    open_challenge(issue)
    cookie = session_cookie(manager)

    with chromium() as browser:
        page = context(browser, live.url, DESKTOP, cookie).new_page()
        page.clock.install()
        page.goto(f"{live.url}{REGISTRATION}")
        expired = page.locator("#challenge-expired")
        expect(expired).to_be_hidden()

        page.clock.run_for(300_000)
        expect(expired).to_be_visible()
        expect(expired).to_have_text("The QR code has expired. Click Refresh and scan the new one.")
        expect(page.locator("#challenge")).to_have_class(re.compile(r"\bexpired\b"))
        expect(page.locator("#refresh")).to_be_visible()
        keep_screenshot(page, "pages-console-expired")


def test_tab_reaches_upload_license_refresh_and_submit_with_a_visible_focus(live, manager, issue):
    open_challenge(issue)
    cookie = session_cookie(manager)

    with chromium() as browser:
        page = context(browser, live.url, DESKTOP, cookie).new_page()
        page.goto(f"{live.url}{REGISTRATION}?register=1")
        expect(page.locator("#qr-image")).to_be_visible()

        reached: list[str] = []
        for _ in range(40):
            page.keyboard.press("Tab")
            reached.append(focused_id(page))
            if reached[-1] in ("upload-license", "refresh", "submit-code"):
                outline = page.locator(f"#{reached[-1]}").evaluate(
                    "e => getComputedStyle(e).outlineStyle"
                )
                assert outline == "solid", f"no visible focus on #{reached[-1]}"
            if reached[-1] == "submit-code":
                break
        wanted = [i for i in reached if i in ("upload-license", "refresh", "submit-code")]
        assert wanted == ["upload-license", "refresh", "submit-code"], reached


def test_console_fits_360_px(live, manager, issue):
    open_challenge(issue, company=LONG_COMPANY)
    cookie = session_cookie(manager)

    with chromium() as browser:
        page = context(browser, live.url, PHONE, cookie).new_page()
        page.goto(f"{live.url}{REGISTRATION}?register=1")
        expect(page.locator("#qr-image")).to_be_visible()

        assert page_width(page) <= 360
        keep_screenshot(page, "pages-console-360")


def test_refresh_replaces_the_qr_code_in_place(live, manager, issue):
    open_challenge(issue)
    cookie = session_cookie(manager)
    url = f"{live.url}{REGISTRATION}"

    with chromium() as browser:
        page = context(browser, live.url, DESKTOP, cookie).new_page()
        page.goto(url)
        link = page.locator("#challenge-link")
        old_link = link.inner_text()
        navigations: list[str] = []
        page.on("request", lambda r: r.is_navigation_request() and navigations.append(r.url))

        page.locator("#refresh").click()

        expect(link).not_to_have_text(old_link)
        assert link.inner_text().startswith(f"{live.url}/m/")
        qr = page.locator("#qr-image")
        expect(qr).to_have_js_property("complete", True)
        expect(qr).not_to_have_js_property("naturalWidth", 0)
        assert navigations == [], "Refresh reloaded the page"
        assert page.url == url
        # Keyboard users stay on Refresh, and the new QR code counts down from its start.
        expect(page.locator("#refresh")).to_be_focused()
        expect(page.locator("#countdown")).to_have_text(re.compile(r"^(5:00|4:59)$"))


def test_refresh_with_javascript_off_reloads_the_page_with_a_new_qr_code(live, manager, issue):
    open_challenge(issue)
    cookie = session_cookie(manager)
    url = f"{live.url}{REGISTRATION}"

    with chromium() as browser:
        page = context(browser, live.url, DESKTOP, cookie, java_script_enabled=False).new_page()
        page.goto(url)
        link = page.locator("#challenge-link")
        old_link = link.inner_text()

        with page.expect_navigation():
            page.locator("#refresh").click()

        expect(link).not_to_have_text(old_link)
        assert page.url == url
        # Without JavaScript the server's own count is shown.
        expect(page.locator("#countdown")).to_have_text("5:00")


# --- The restart reminder -----------------------------------------------------------


def test_the_reminder_takes_the_focus_and_keeps_it(live, settings, frozen_clock, manager, issue):
    lifecycle.start_node(node("node-a"))
    register(issue()[1])
    frozen_clock.advance(seconds=settings.NODE_LEASE_SECONDS)  # the node was killed
    lifecycle.start_node(node("node-a"))
    assert state() == "expired_due_to_restart"
    cookie = session_cookie(manager)

    with chromium() as browser:
        page = context(browser, live.url, DESKTOP, cookie).new_page()
        page.goto(f"{live.url}/system/version/")

        dialog = page.get_by_role("alertdialog")
        authenticate = dialog.get_by_role("link", name="Authenticate")
        close = dialog.get_by_role("button", name="Close")
        expect(authenticate).to_be_focused()
        # Tab and Shift+Tab cycle between the dialog's two controls, never the page's.
        for key, focused in (
            ("Tab", close),
            ("Tab", authenticate),
            ("Shift+Tab", close),
            ("Shift+Tab", authenticate),
        ):
            page.keyboard.press(key)
            expect(focused).to_be_focused()
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{live.url}{REGISTRATION}")
