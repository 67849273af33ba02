"""Faults: the database unreachable -> a plain 503 page; back -> pages work again.

The PostgreSQL test puts a TCP proxy between a real gunicorn server and PostgreSQL and
closes it, which to the server is the database going away (the shared PostgreSQL itself
is never stopped). The in-process tests cover both paths a database error can take:
raised by a view, or raised by a middleware below the guard.
"""

from __future__ import annotations

import contextlib
import http.client
import select
import socket
import threading
from pathlib import Path

import pytest
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from tests.conftest import needs_postgres
from tests.processes import database_url, server_env, start_gunicorn

LEAK_MARKERS = ("Traceback", "OperationalError", "InterfaceError", "psycopg", "5432", 'File "')


def _assert_plain_503(status: int, headers: dict[str, str], body: str) -> None:
    assert status == 503
    assert "Service unavailable" in body
    assert "The database cannot be reached. Try again in a moment." in body
    for marker in LEAK_MARKERS:
        assert marker not in body
    assert headers["Retry-After"] == "5"
    assert "no-store" in headers["Cache-Control"]


# --- In process: a view and a middleware that fail as an unreachable database does ----


def _refused(request: HttpRequest) -> HttpResponse:
    raise OperationalError('connection to server at "127.0.0.1", port 5432 failed')


def _closed(request: HttpRequest) -> HttpResponse:
    raise InterfaceError("connection already closed")


def _other_error(request: HttpRequest) -> HttpResponse:
    raise ValueError("not a database error")


def _fine(request: HttpRequest) -> HttpResponse:
    return HttpResponse("fine")


urlpatterns = [
    path("refused", _refused),
    path("closed", _closed),
    path("other", _other_error),
    path("fine", _fine),
]


class FailOnTheWayOut:
    """Fail after the view, as SessionMiddleware does when it cannot save the session."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        self.get_response(request)
        raise OperationalError("server closed the connection unexpectedly")


@pytest.fixture
def plain_client() -> Client:
    # Django's error handling, not the test client's re-raise, is under test here.
    return Client(raise_request_exception=False)


@pytest.mark.urls("tests.test_db_unavailable")
@pytest.mark.parametrize("url", ["/refused", "/closed"])
def test_a_database_error_in_a_view_gives_a_plain_503(plain_client, url):
    response = plain_client.get(url)

    _assert_plain_503(response.status_code, response.headers, response.content.decode())
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" in response.headers


@pytest.mark.urls("tests.test_db_unavailable")
def test_a_database_error_below_the_guard_gives_a_plain_503(plain_client, settings):
    position = settings.MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware")
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[: position + 1],
        "tests.test_db_unavailable.FailOnTheWayOut",
        *settings.MIDDLEWARE[position + 1 :],
    ]

    response = plain_client.get("/fine")

    _assert_plain_503(response.status_code, response.headers, response.content.decode())


@pytest.mark.urls("tests.test_db_unavailable")
def test_other_errors_stay_500_and_the_next_request_is_not_marked(plain_client):
    # The guard answers database errors only; it must not hide other bugs as outages.
    response = plain_client.get("/other")
    after = plain_client.get("/fine")

    assert response.status_code == 500
    assert after.status_code == 200
    assert after.content == b"fine"


@pytest.mark.urls("tests.test_db_unavailable")
def test_the_503_holds_even_with_debug_on(plain_client, settings):
    settings.DEBUG = True

    response = plain_client.get("/refused")

    _assert_plain_503(response.status_code, response.headers, response.content.decode())


# --- A real server, a real PostgreSQL, and a proxy between them that can be closed ------


class TcpProxy:
    """Forward 127.0.0.1:<port> to a target; close() drops the listener and every link."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._links: set[socket.socket] = set()
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        """Stop accepting (new connections are refused) and cut every open link."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            links, self._links = self._links, set()
        for sock in links:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._links.update((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1.0)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (b if source is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                self._links.difference_update((a, b))


def _get(port: int, url: str, cookie: str) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", url, headers={"Cookie": cookie})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


def _children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(child) for child in text.split()}


@pytest.fixture
def proxied_server(transactional_db, settings, key_dir, tmp_path):
    """gunicorn (one worker) reaching the test database only through a TcpProxy."""
    from django.db import connection

    db = connection.settings_dict
    proxy = TcpProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    proxy.open()
    env = server_env(
        database_url(db, host="127.0.0.1", port=proxy.port),
        key_dir,
        tmp_path / "var",
        # The test process signs the session cookie; the server must read it the same way.
        SECRET_KEY=settings.SECRET_KEY,
        DEBUG="false",
        NODE_NAME="node-a",
        WEB_CONCURRENCY="1",
    )
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(proxy.close)
        server = start_gunicorn(env, tmp_path / "server.log")
        cleanup.callback(server.stop)  # a clean stop, before the proxy goes
        yield server.process, server.port, proxy


@needs_postgres
@pytest.mark.processes
def test_database_outage_gives_503_and_the_server_recovers_by_itself(
    proxied_server, manager_client
):
    server, port, proxy = proxied_server
    cookie = f"sessionid={manager_client.cookies['sessionid'].value}"
    page = "/system/registration/"

    status, _, body = _get(port, page, cookie)
    assert status == 200, body
    assert "Registration" in body
    workers = _children(server.pid)
    assert len(workers) == 1

    proxy.close()
    for _ in range(3):
        _assert_plain_503(*_get(port, page, cookie))

    proxy.open()
    status, _, body = _get(port, page, cookie)
    assert status == 200, body
    assert "Registration" in body
    # Same master, same worker: nothing was restarted to get the pages back.
    assert server.poll() is None
    assert _children(server.pid) == workers
