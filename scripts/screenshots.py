"""Remake the README screenshots in docs/screenshots/ with Debian's Chromium.

Run it as `.venv/bin/python scripts/screenshots.py` (or `make screenshots`). It starts a
throwaway development server on a free port with its own data directory (SQLite, demo
keys, a demo Container.lic, an admin account), then drives Chromium through a whole
registration: a refused upload with the failure Details open, the Registration page
with its QR code, the phone page at 360 px, and, after a restart of the server, the
restart reminder. Nothing outside the temporary directory and docs/screenshots/ changes.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "docs" / "screenshots"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# Headless and quiet: no sandbox (none in containers), no GPU, no traffic of Chromium's own.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
USERNAME = "admin"
DESKTOP = {"viewport": {"width": 1024, "height": 720}, "locale": "en-US"}
PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "en-US",
}
# Settings that would point the throwaway server at real data; it must use its own.
FOREIGN_SETTINGS = (
    "DATABASE_URL",
    "CACHE_URL",
    "KEYS_DIR",
    "STATIC_ROOT",
    "AUTHORITY_BASE_URL",
    "LICSERVER_ROLES",
    "LICSERVER_BOOT_ID",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(var_dir: Path, port: int, password: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_SETTINGS}
    env.update(
        LICSERVER_VAR_DIR=str(var_dir),
        PORT=str(port),
        AUTHORITY_BASE_URL=f"http://127.0.0.1:{port}",
        DJANGO_SUPERUSER_USERNAME=USERNAME,
        DJANGO_SUPERUSER_PASSWORD=password,
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    """Run a manage.py command to completion and return its output."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def wait_until_up(base: str, server: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the development server exited before answering")
        try:
            # base is the http://127.0.0.1 URL of the server this script started.
            with urllib.request.urlopen(f"{base}/healthz", timeout=2):  # noqa: S310
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)  # a script polling a starting server, not a test
    raise SystemExit(f"the development server did not answer at {base} in {timeout:.0f} s")


@contextmanager
def running_server(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """Run one life of the node: start the server, yield its URL, stop it with SIGTERM."""
    base = f"http://127.0.0.1:{port}"
    with log.open("a") as out:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_up(base, server)
            yield base
        finally:
            # SIGTERM stops it like Ctrl-C: the node's lease is released cleanly.
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def save(png: bytes, name: str) -> Path:
    """Write a screenshot as a small palette PNG (the README carries them in git)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / name
    small.save(path, format="PNG", optimize=True)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KB)")
    return path


def new_page(browser: Browser, options: dict) -> Page:
    page = browser.new_context(**options).new_page()
    page.set_default_timeout(15_000)
    return page


def log_in(page: Page, base: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("navigation")).to_be_visible()


def upload(page: Page, base: str, path: Path) -> None:
    page.goto(f"{base}/system/registration/?register=1")
    page.get_by_label("AUTH Method").select_option(label="Local Container")
    page.get_by_label("License file (Container.lic)").set_input_files(str(path))
    page.get_by_role("button", name="Upload License").click()


def wait_for_qr(page: Page) -> None:
    qr = page.locator("#qr-image")
    expect(qr).to_be_visible()
    expect(qr).to_have_js_property("complete", True)
    expect(qr).not_to_have_js_property("naturalWidth", 0)


def issue_refused_license(env: dict[str, str], out: Path) -> None:
    """Sign a license that fails twice: an older version, and another project content
    (issue_license refuses an expiry date already past, so not an expired one)."""
    app_name = json.loads(
        manage(
            env,
            "shell",
            "-c",
            "import json; from django.conf import settings as s; print(json.dumps(s.APP_NAME))",
        )
        .strip()
        .splitlines()[-1]
    )
    today = date.today()
    manage(
        env,
        "issue_license",
        "--company=Demo Company",
        "--project-name=Demo Project",
        f"--app-name={app_name}",
        "--app-version=10.5",
        "--project-content=dashboards",
        f"--contract-date={(today - timedelta(days=400)).isoformat()}",
        f"--expires={(today + timedelta(days=330)).isoformat()}",
        "--max-nodes=1",
        f"--out={out}",
    )


def make_screenshots(browser: Browser, env: dict[str, str], port: int, var_dir: Path) -> None:
    password = env["DJANGO_SUPERUSER_PASSWORD"]
    log = var_dir / "server.log"
    refused = var_dir / "Refused.lic"
    issue_refused_license(env, refused)

    with running_server(env, port, log) as base:
        page = new_page(browser, DESKTOP)
        log_in(page, base, password)

        upload(page, base, refused)
        panel = page.locator("#registration-failed")
        expect(panel.locator("li.cause")).to_have_count(2)
        panel.get_by_text("Details", exact=True).click()
        expect(page.locator("#failure-details dd").first).to_be_visible()
        save(page.screenshot(full_page=True), "registration-failed.png")

        upload(page, base, var_dir / "Container.lic")
        wait_for_qr(page)
        save(page.screenshot(full_page=True), "registration-qr.png")

        phone = new_page(browser, PHONE)
        phone.goto(page.locator("#challenge-link").inner_text().strip())
        code = phone.locator("#verification-code").inner_text().strip()
        save(phone.screenshot(full_page=True), "phone.png")

        page.get_by_label("Verification code").fill(code)
        page.get_by_role("button", name="Submit").click()
        expect(page.locator("#registration-state")).to_have_text("Registered")

    # A new life of the only node: the registration expires and admins are reminded.
    with running_server(env, port, log) as base:
        page.goto(f"{base}/system/version/")
        modal = page.get_by_role("alertdialog")
        expect(modal).to_be_visible()
        expect(page.locator("#authenticate")).to_be_focused()
        save(page.screenshot(), "restart-reminder.png")


def main() -> None:
    if not CHROMIUM.exists():
        raise SystemExit(f"needs chromium at {CHROMIUM} (apt-get install chromium)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="licserver-screenshots-") as tmp:
        var_dir = Path(tmp)
        env = server_env(var_dir, port, secrets.token_urlsafe(16))
        manage(env, "compile_translations")
        manage(env, "migrate", "--noinput")
        manage(env, "setup_demo")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
            )
            try:
                make_screenshots(browser, env, port, var_dir)
            finally:
                browser.close()


if __name__ == "__main__":
    main()
