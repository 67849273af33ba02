"""Accessibility, measured: axe-core in Chromium on every console page (in each state that
shows more of it), the phone page, the restart reminder (the dialog and the banner it
closes to) and the admin pages support staff use, in English and in Chinese. No page may
have a serious or critical violation; the test prints every page's counts by impact.

axe-core is the npm package, installed by `make test` and .ci/run into .ci/node (nothing is
downloaded at test time); without it the test skips and says how to install it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from playwright.sync_api import BrowserContext, Page, expect

from registration.authority.models import Binding, IssuedLicense
from registration.cluster import lifecycle
from registration.flows.challenge import refresh_challenge
from registration.flows.code import Outcome, submit_code
from registration.models import ChallengeState, QrChallenge
from tests.browser import ARTIFACTS_DIR, chromium, needs_chromium
from tests.node_steps import node
from tests.phone_steps import phone_code, wrong_code

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / ".ci" / "node" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
IMPACTS = ("critical", "serious", "moderate", "minor")
SUPPORT_PERMISSIONS = [
    "view_issuedlicense",
    "revoke_issuedlicense",
    "view_binding",
    "unbind_binding",
    "view_auditevent",
]

pytestmark = [
    pytest.mark.browser,
    needs_chromium,
    pytest.mark.skipif(
        not AXE.exists(),
        reason=f"needs axe-core at {AXE.relative_to(ROOT)}: run `make test`, or "
        "`npm install --prefix .ci/node axe-core@4`",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def live(live_server, settings, frozen_clock, monkeypatch):
    """The live server (QR codes pointing at it), and the ORM usable between page visits:
    Playwright's sync API runs an event loop in this thread, which Django refuses by
    default; the test changes rows only between visits, never while a page loads."""
    settings.AUTHORITY_BASE_URL = live_server.url
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    return live_server


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class Audit:
    """Run axe on pages and keep every page's violations."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.source = AXE.read_text(encoding="utf-8")
        self.results: dict[str, list[dict]] = {}

    def check(self, page: Page, name: str) -> None:
        page.add_script_tag(content=self.source)
        found = page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"
        )
        self.results[f"{name} [{self.language}]"] = found

    def counts(self, name: str) -> dict[str, int]:
        found = self.results[name]
        return {impact: sum(1 for v in found if v["impact"] == impact) for impact in IMPACTS}

    def report(self) -> str:
        lines = [f"{'page':<56} " + " ".join(f"{i:>8}" for i in IMPACTS)]
        for name in self.results:
            counts = self.counts(name)
            lines.append(f"{name:<56} " + " ".join(f"{counts[i]:>8}" for i in IMPACTS))
        return "\n".join(lines)

    def blocking(self) -> dict[str, list[dict]]:
        return {
            name: [v for v in found if v["impact"] in BLOCKING]
            for name, found in self.results.items()
            if any(v["impact"] in BLOCKING for v in found)
        }


def new_context(browser, base: str, locale: str, cookie: str | None = None, **options):
    options.setdefault("viewport", {"width": 1280, "height": 900})
    # axe is injected as a script of its own; the pages' CSP allows only theirs.
    context: BrowserContext = browser.new_context(locale=locale, bypass_csp=True, **options)
    context.set_default_timeout(10_000)
    if cookie:
        context.add_cookies([{"name": "sessionid", "value": cookie, "url": base}])
    return context


def upload_in_page(page: Page, base: str, data: str | bytes) -> None:
    page.goto(f"{base}/system/registration/?register=1")
    page.locator("#id_license").set_input_files(
        files=[{"name": "Container.lic", "mimeType": "text/plain", "buffer": _bytes(data)}]
    )
    with page.expect_navigation():
        page.locator("#upload-license").click()


def _bytes(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


def lock_code_entry() -> None:
    wrong = wrong_code(QrChallenge.objects.get(state=ChallengeState.OPEN))
    while submit_code(wrong).outcome != Outcome.WRONG_AND_LOCKED:
        pass


@pytest.mark.parametrize(("locale", "language"), [("en-US", "en"), ("zh-CN", "zh-hans")])
def test_no_page_has_a_serious_or_critical_violation(
    live, frozen_clock, settings, manager, admin_user, django_user_model, issue, locale, language
):
    base = live.url
    audit = Audit(language)
    support = django_user_model.objects.create_user(
        "support", password="pw-support-1", is_staff=True
    )
    support.user_permissions.add(*Permission.objects.filter(codename__in=SUPPORT_PERMISSIONS))
    ops = django_user_model.objects.create_user("ops", password="pw-ops-12345", is_staff=True)
    ops.user_permissions.add(Permission.objects.get(codename="manage_registration"))
    lifecycle.start_node(node("node-a"))

    with chromium() as browser:
        anonymous = new_context(browser, base, locale).new_page()
        console = new_context(browser, base, locale, session_cookie(manager)).new_page()
        phone_context = new_context(
            browser, base, locale, viewport={"width": 360, "height": 740}, is_mobile=True
        )
        phone = phone_context.new_page()

        def visit(page: Page, path: str, name: str) -> None:
            page.goto(f"{base}{path}")
            audit.check(page, name)

        # Before any license.
        visit(anonymous, "/accounts/login/", "login")
        visit(anonymous, "/admin/login/", "admin login")
        visit(console, "/system/registration/", "registration: unregistered")
        visit(console, "/system/registration/?register=1", "registration: upload form")
        visit(console, "/system/version/", "version information")
        visit(console, "/reports/", "reports: not registered (403)")

        # A refused upload, then an accepted one and its QR code, and the phone page.
        _, bad = issue(app_version="10.0")
        upload_in_page(console, base, bad)
        expect(console.locator("#registration-failed")).to_be_visible()
        audit.check(console, "registration: upload refused")
        console.locator("#failure-details summary").click()
        audit.check(console, "registration: refusal details open")
        lic, good = issue()
        upload_in_page(console, base, good)
        expect(console.locator("#qr-image")).to_be_visible()
        audit.check(console, "registration: QR code")
        challenge = QrChallenge.objects.get(state=ChallengeState.OPEN)
        visit(phone, f"/m/{challenge.token}", "phone: code")
        visit(phone, "/m/not-a-token", "phone: problem")
        console.locator("#id_code").fill("000000")
        with console.expect_navigation():
            console.locator("#submit-code").click()
        audit.check(console, "registration: wrong code")
        console.clock.install()
        console.goto(f"{base}/system/registration/")
        console.clock.run_for(300_000)
        expect(console.locator("#challenge-expired")).to_be_visible()
        audit.check(console, "registration: QR code ran out")

        # Code entry locked, then registered.
        refresh_challenge()
        lock_code_entry()
        visit(console, "/system/registration/", "registration: code entry locked")
        frozen_clock.advance(minutes=16)
        assert submit_code(phone_code(refresh_challenge().challenge)).outcome == Outcome.ACCEPTED
        visit(console, "/system/registration/", "registration: registered")
        visit(console, "/reports/", "reports: registered")
        visit(console, "/system/version/request", "license request: form")
        visit(
            console,
            "/system/version/request?company=Acme+Ltd&project_name=Reports"
            "&contract_date=2026-05-01",
            "license request: email",
        )
        visit(console, "/system/version/request?company=", "license request: errors")
        _, newer = issue(issued_at=lic.issued_at + timedelta(days=1))
        upload_in_page(console, base, newer)
        expect(console.locator("#confirm-replace")).to_be_visible()
        audit.check(console, "registration: confirm replacing the license")

        # After a restart: the alert where admins land, the reminder dialog elsewhere, and
        # the banner it closes to; the admin's reminder too.
        frozen_clock.advance(seconds=settings.NODE_LEASE_SECONDS)
        lifecycle.start_node(node("node-a"))
        visit(console, "/system/registration/", "registration: expired due to restart")
        visit(console, "/system/version/", "reminder dialog (version information)")
        console.keyboard.press("Escape")
        expect(console.locator("#restart-banner")).to_be_visible()
        audit.check(console, "reminder banner (version information)")
        visit(console, "/reports/", "reminder dialog (reports, 403)")
        admin_reminder = new_context(browser, base, locale, session_cookie(ops)).new_page()
        visit(admin_reminder, "/admin/", "admin: reminder dialog")

        # The vendor's support staff.
        staff = new_context(browser, base, locale, session_cookie(support)).new_page()
        binding = Binding.objects.get(license__license_id=lic.license_id)
        issued = IssuedLicense.objects.get(license_id=lic.license_id)
        visit(staff, "/admin/", "admin: index (support staff)")
        visit(staff, "/admin/authority/binding/", "admin: bindings")
        visit(staff, "/admin/authority/binding/?q=Reports", "admin: bindings searched")
        visit(staff, f"/admin/authority/binding/{binding.pk}/change/", "admin: binding")
        visit(staff, f"/admin/authority/binding/{binding.pk}/unbind/", "admin: unbind")
        visit(staff, "/admin/authority/issuedlicense/", "admin: issued licenses")
        visit(staff, f"/admin/authority/issuedlicense/{issued.pk}/change/", "admin: issued license")
        visit(staff, f"/admin/authority/issuedlicense/{issued.pk}/revoke/", "admin: revoke")
        visit(staff, "/admin/authority/auditevent/", "admin: vendor audit log")

    report = audit.report()
    print(f"\naxe-core violations per page ({language}):\n{report}")
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    (ARTIFACTS_DIR / f"axe-{language}.txt").write_text(report + "\n", encoding="utf-8")
    (ARTIFACTS_DIR / f"axe-{language}.json").write_text(
        json.dumps(audit.results, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    blocking = audit.blocking()
    assert not blocking, f"serious or critical violations:\n{json.dumps(blocking, indent=1)}"
