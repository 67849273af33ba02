"""docs/operations.md's second console on one machine, run as the document prints it: its
own data folder, the first server's pinned public keys, console role only, QR codes for
the first server's verification service. With it a move is tried end to end: refused
while bound, unbound by support staff, registered; the first server stays Registered."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from urllib.parse import urlencode

import pytest

from tests.phone_steps import shown_code
from tests.processes import (
    ROOT,
    Browser,
    Server,
    free_port,
    spawn,
    start_gunicorn,
    wait_for,
)
from tests.test_readme_cluster import shell_env

pytestmark = pytest.mark.processes

HEADING = "### Trying a move on one machine"
SECOND_ADMIN, SECOND_PASSWORD = "admin2", "pw-second-admin-1"
BOUND_ELSEWHERE = "The maximum license number has been reached."


def documented_commands() -> list[str]:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text[text.index(HEADING) :]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def log_in(browser: Browser, username: str, password: str) -> None:
    browser.request("/accounts/login/")
    status, body = browser.post("/accounts/login/", {"username": username, "password": password})
    assert status == 200 and "Log out" in body, body[:800]


def qr_link(page: str) -> str:
    found = re.search(r'<code id="challenge-link">([^<]+)</code>', page)
    assert found, page[:2000]
    return html.unescape(found.group(1))


def register(browser: Browser, page: str) -> str:
    """Scan the page's QR code as the phone does and type its code; return the page after."""
    status, phone = browser.request(qr_link(page))
    code = shown_code(phone)
    assert status == 200 and code, phone[:1500]
    status, body = browser.post("/system/registration/code", {"code": code})
    assert "Registration successful." in body, body[:1500]
    return body


def state_of(browser: Browser) -> str:
    page = browser.request("/system/registration/")[1]
    return re.search(r'id="registration-state">\s*(.*?)\s*</p>', page, re.S).group(1)


def test_the_documented_second_console_tries_a_move(tmp_path):
    first_var, second_var = tmp_path / "var", tmp_path / "var-second"
    first_port, second_port = free_port(), free_port()
    env = shell_env(first_var)
    # The first server, as `make run` sets it up (both roles, SQLite, the demo keys).
    for args in (["compile_translations", "-v0"], ["setup_demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=180,
            capture_output=True,
        )
    first = start_gunicorn(dict(env, WEB_CONCURRENCY="1"), tmp_path / "first.log", port=first_port)
    second: Server | None = None
    try:
        one = Browser(first.base)
        one.login()
        status, page = one.upload((first_var / "Container.lic").read_bytes())
        assert status == 200, page[:1500]
        register(one, page)
        version = one.request("/system/version/")[1]
        first_installation = re.search(r'<code id="installation-id">([^<]+)<', version)[1]

        # The document's commands, with this run's folders and ports put in.
        lines = [
            line.replace("var-second", str(second_var))
            .replace("var/keys", str(first_var / "keys"))
            .replace("8000", str(first_port))
            .replace("8001", str(second_port))
            for line in documented_commands()
        ]
        server_line = lines.pop()
        assert "runserver" in server_line
        lines = [f"{line} --noinput" if "createsuperuser" in line else line for line in lines]
        env_file = tmp_path / "second.env"
        script = "\n".join(lines) + f"\nenv -0 > {env_file}"
        subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env=dict(
                env,
                DJANGO_SUPERUSER_PASSWORD=SECOND_PASSWORD,
                DJANGO_SUPERUSER_EMAIL="admin2@example.com",
            ),
            check=True,
            timeout=180,
            capture_output=True,
        )
        second_env = dict(
            item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item
        )
        assert second_env["LICSERVER_ROLES"] == "console"
        log = tmp_path / "second.log"
        second = Server(spawn(["bash", "-c", server_line], second_env, log), second_port, log)
        wait_for(lambda: _answers(second), "the second console to answer", timeout=30)
        assert not (second_var / "keys").exists()  # no private key on the second console

        # As the document says, on localhost: its cookies are not the first server's.
        two = Browser(f"http://localhost:{second_port}")
        log_in(two, SECOND_ADMIN, SECOND_PASSWORD)
        status, page = two.upload((first_var / "Container.lic").read_bytes())
        assert status == 200, page[:1500]
        assert qr_link(page).startswith(f"{first.base}/m/")
        status, phone = two.request(qr_link(page))
        assert BOUND_ELSEWHERE in html.unescape(phone) and shown_code(phone) is None

        # Support staff unbind it, found by the first server's installation id.
        query = urlencode({"q": first_installation})
        changelist = one.request(f"/admin/authority/binding/?{query}")[1]
        pk = re.search(r'href="/admin/authority/binding/(\d+)/change/', changelist)[1]
        one.request(f"/admin/authority/binding/{pk}/unbind/")
        status, _ = one.post(f"/admin/authority/binding/{pk}/unbind/", {"reason": "move"})
        assert status == 200

        status, page = two.post("/system/registration/challenge", {})
        assert status == 200, page[:1500]
        register(two, page)
        assert state_of(two) == "Registered"
        assert state_of(one) == "Registered"  # until it restarts (the offline design)
    finally:
        first.kill()
        if second is not None:
            second.kill()


def _answers(server: Server) -> bool:
    if not server.running:
        pytest.fail(f"the second console exited: {server.output()}")
    try:
        return Browser(server.base).request("/healthz")[0] == 200
    except OSError:
        return False
