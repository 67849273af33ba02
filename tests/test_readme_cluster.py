"""The README's "Two nodes on one machine" works as written: its commands, run as it prints
them, on a clean clone and after a first `make run`, give two nodes that register.

Only what would collide with the machine's own use is put in: the database name (a
throwaway one), the Redis database number and the two ports. The rest is the README's text.
"""

from __future__ import annotations

import html
import os
import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest

from tests.conftest import needs_postgres, needs_redis
from tests.phone_steps import shown_code
from tests.processes import (
    ADMIN,
    PASSWORD,
    ROOT,
    Browser,
    Server,
    free_port,
    spawn,
    wait_for,
    with_database,
)
from tests.test_setup_demo import make_run_commands

pytestmark = [pytest.mark.processes, needs_postgres, needs_redis]

SECTION = "## Two nodes on one machine"
# What a developer's shell has, less what the test run itself set.
DROPPED = ("DATABASE_URL", "CACHE_", "SECRET_KEY", "LICSERVER_", "DJANGO_", "PYTEST_", "KEYS_DIR")
DROPPED_KEYS = (
    "LICENSE_PUBLIC_KEYS",
    "AUTHORITY_PUBLIC_KEYS",
    "AUTHORITY_PRIVATE_KEY_FILES",
    "LICENSE_SIGNING_KEY_FILES",
    "AUTHORITY_KID",
    "NODE_NAME",
    "PORT",
    "AUTHORITY_BASE_URL",
)


def recipe() -> list[str]:
    """The commands of the README's first sh block under the section, one a line."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def shell_env(var: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(DROPPED) and key not in DROPPED_KEYS
    }
    # The recipe's var/ is this test's (the clone's own is left alone), and the admin it
    # makes has a password the test knows.
    env.update(
        LICSERVER_VAR_DIR=str(var),
        DJANGO_SUPERUSER_USERNAME=ADMIN,
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        PYTHONUNBUFFERED="1",
    )
    return env


def run_bash(script: str, env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{script}\n--- exit {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture
def names() -> dict[str, str]:
    """This run's database name, Redis database and ports, and drops the database after."""
    database = f"licserver_readme_{secrets.token_hex(4)}"
    redis_db = (int(urlparse(os.environ["CACHE_URL"]).path.lstrip("/") or 0) + 1) % 16
    values = {
        "database": database,
        "redis": f"redis://127.0.0.1:6379/{redis_db}",
        "8001": str(free_port()),
        "8002": str(free_port()),
    }
    yield values
    admin_url = with_database(os.environ["DATABASE_URL"], "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    subprocess.run(["redis-cli", "-u", values["redis"], "FLUSHDB"], capture_output=True)


def put_in(line: str, names: dict[str, str]) -> str:
    line = line.replace("127.0.0.1:5432/licserver", f"127.0.0.1:5432/{names['database']}")
    line = re.sub(r"(createdb .*) licserver$", rf"\1 {names['database']}", line)
    line = line.replace("redis://127.0.0.1:6379/0", names["redis"])
    return line.replace("8001", names["8001"]).replace("8002", names["8002"])


@pytest.mark.parametrize("after_make_run", [False, True], ids=["clean-clone", "after-make-run"])
def test_the_readme_cluster_recipe_works_as_written(tmp_path, names, after_make_run):
    var = tmp_path / "var"
    env = shell_env(var)
    lines = recipe()
    assert lines[0] == "make venv"
    servers_lines = [line for line in lines if "gunicorn" in line]
    setup_lines = [line for line in lines if "gunicorn" not in line]
    assert len(servers_lines) == 2 and all(line.endswith(" &") for line in servers_lines)

    if after_make_run:
        # `make run`'s set-up on SQLite: its demo keys, and a Container.lic that only the
        # SQLite database's vendor registry knows.
        for args in make_run_commands()[:-1]:
            run_bash(f"{sys.executable} manage.py {' '.join(args)}", env)
        assert (var / "Container.lic").exists() and (var / "db.sqlite3").exists()
    before = (var / "Container.lic").read_bytes() if after_make_run else None

    # The set-up lines in one shell, as typed one after the other; then its environment.
    env_file = tmp_path / "env"
    script = "\n".join(put_in(line, names) for line in setup_lines)
    out = run_bash(f"{script}\nenv -0 > {env_file}", env)
    assert "Password:" in out or "Username: process-admin" in out, out
    node_env = dict(item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item)
    if before is not None:
        assert (var / "Container.lic").read_bytes() == before  # kept, not remade

    servers: list[Server] = []
    try:
        for n, line in enumerate(servers_lines):
            command = put_in(line, names).removesuffix(" &")
            port = int(re.search(r"PORT=(\d+)", command).group(1))
            log = tmp_path / f"node-{n}.log"
            server = Server(spawn(["bash", "-c", command], node_env, log), port, log)
            servers.append(server)
            wait_for(lambda s=server: _healthy(s), f"node {n} of the README to answer", timeout=30)
        a, b = (Browser(server.base) for server in servers)
        a.login()
        status, page = a.upload((var / "Container.lic").read_bytes())
        assert status == 200, page[:2000]
        link = html.unescape(re.search(r'<code id="challenge-link">([^<]+)</code>', page)[1])
        assert link.startswith(f"http://127.0.0.1:{names['8001']}/m/")
        status, phone = a.request(link)
        assert status == 200 and shown_code(phone), phone[:1500]  # in the vendor's registry
        status, page = a.post("/system/registration/code", {"code": shown_code(phone)})
        assert "Registration successful." in page, page[:1500]
        b.login()
        status, page = b.request("/system/registration/")
        assert re.search(r'id="registration-state">\s*Registered\s*<', page), page[:1500]
    finally:
        for server in servers:
            if server.running:
                server.process.send_signal(signal.SIGTERM)
                try:
                    server.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    server.kill()
        for server in servers:
            sys.stderr.write(f"--- {server.log.name} ---\n{server.output(1500)}\n")


def _healthy(server: Server) -> bool:
    if not server.running:
        pytest.fail(f"a README node exited: {server.output()}")
    try:
        return Browser(server.base).request("/healthz")[0] == 200
    except OSError:
        return False
