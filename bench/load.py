"""Rows 5-7, on PostgreSQL: the phone page under load and at scale, and a burst of codes.

Rows 5 and 7 start gunicorn on a loopback port against the bench database (with
gunicorn.conf.py when the repository has one, else two sync workers) and drive it from
client threads with http.client; row 6 times the phone page in this process, where the
only thing that changes between its two runs is the size of the tables.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.common import Row, at_least, ms, percentile, ratio_row, rounds
from bench.pages import install_license, manager_client
from registration import clock
from registration.authority.registry import record_issued_license
from registration.flows.challenge import refresh_challenge, verifier_pepper
from registration.models import AuditAction, AuditEvent, Installation
from registration.protocol.challenge import (
    Purpose,
    decode_token,
    derive_key,
    encode_token,
    new_challenge,
)
from registration.protocol.keys import load_signing_key
from registration.protocol.license import b64decode_key, license_secret, sign_license
from registration.protocol.verifier import check_verifier

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 20
MANY_CLIENTS = 200
START_SECONDS = 30
PHASE_SECONDS = 60


# --- The server -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    host = db["HOST"] or "127.0.0.1"
    return f"postgres://{db['USER']}{password}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def gunicorn_command(port: int) -> tuple[list[str], str]:
    binary = str(Path(sys.executable).with_name("gunicorn"))
    bind = f"--bind=127.0.0.1:{port}"
    if (ROOT / "gunicorn.conf.py").exists():
        return [binary, "-c", "gunicorn.conf.py", bind, "licserver.wsgi"], "gunicorn.conf.py"
    return [binary, "licserver.wsgi", "-w", "2", bind], "-w 2 (sync)"


@contextlib.contextmanager
def gunicorn() -> Iterator[tuple[int, str]]:
    """Run gunicorn against the bench database; yield (port, how it was configured)."""
    port = _free_port()
    command, how = gunicorn_command(port)
    env = dict(os.environ)
    env.update(
        DATABASE_URL=_database_url(),
        SECRET_KEY=settings.SECRET_KEY,
        DJANGO_SETTINGS_MODULE="bench.settings",
    )
    env.pop("SECRET_KEY_FILE", None)
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited at start-up: {' '.join(command)}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start listening") from None
                time.sleep(0.1)
        yield port, how
    finally:
        server.terminate()
        try:
            server.wait(timeout=START_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=START_SECONDS)


# --- Load ------------------------------------------------------------------------------


@dataclass
class Phase:
    """What a load phase measured: latencies (ns), statuses, elapsed wall time."""

    latencies: list[int] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    elapsed_ns: int = 0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / (self.elapsed_ns / 1e9)


def load(port: int, urls: list[str], per_client: int) -> Phase:
    """One keep-alive client thread per URL, per_client GETs each, bounded in time."""
    phase = Phase()
    lock = threading.Lock()
    barrier = threading.Barrier(len(urls) + 1)
    deadline = time.monotonic() + PHASE_SECONDS

    def client(url: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, statuses = [], Counter()
        barrier.wait()
        for _ in range(per_client):
            if time.monotonic() > deadline:
                break
            start = time.perf_counter_ns()
            try:
                conn.request("GET", url)
                response = conn.getresponse()
                response.read()
                statuses[response.status] += 1
            except (OSError, http.client.HTTPException) as exc:
                statuses[type(exc).__name__] += 1
                conn.close()  # http.client reconnects on the next request
                continue
            mine.append(time.perf_counter_ns() - start)
        conn.close()
        with lock:
            phase.latencies.extend(mine)
            phase.statuses.update(statuses)

    threads = [threading.Thread(target=client, args=(url,)) for url in urls]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter_ns()
    for thread in threads:
        thread.join()
    phase.elapsed_ns = time.perf_counter_ns() - start
    return phase


def _sign(kid: str, **fields):
    from bench.micro import sample_license

    lic = sample_license(kid)
    lic = type(lic)(**{**lic.__dict__, "license_id": uuid.uuid4(), **fields})
    text = sign_license(lic, load_signing_key(settings.LICENSE_SIGNING_KEY_FILES[kid]), kid)
    return lic, text


def phone_token(kid: str, license_id: uuid.UUID, installation_id: uuid.UUID, secret: bytes) -> str:
    """Make the token a console holding this license (its secret) would put in its QR."""
    challenge, key = new_challenge(
        purpose=Purpose.REGISTER,
        license_id=license_id,
        installation_id=installation_id,
        node_name="bench-node",
        node_count=1,
        kid=kid,
        authority_public=b64decode_key(settings.AUTHORITY_PUBLIC_KEYS[kid]),
        license_secret=secret,
        now=clock.now(),
        ttl_seconds=settings.CHALLENGE_TTL_SECONDS,
    )
    return encode_token(challenge, key)


def v1_token(kid: str, license_id: uuid.UUID, installation_id: uuid.UUID, secret: bytes) -> str:
    """A version-1 token (no chain), as a console not yet upgraded makes it."""
    authority_public = b64decode_key(settings.AUTHORITY_PUBLIC_KEYS[kid])
    server_private = X25519PrivateKey.generate()
    proto, _v2_key = new_challenge(
        purpose=Purpose.REGISTER,
        license_id=license_id,
        installation_id=installation_id,
        node_name="bench-node",
        node_count=1,
        kid=kid,
        authority_public=authority_public,
        license_secret=secret,
        now=clock.now(),
        ttl_seconds=settings.CHALLENGE_TTL_SECONDS,
        server_private=server_private,
    )
    old = dataclasses.replace(proto, version=1, chain=b"")
    shared = server_private.exchange(X25519PublicKey.from_public_bytes(authority_public))
    key = derive_key(shared, old.server_public, authority_public, kid, secret, version=1)
    return encode_token(old, key)


def chain_check_queries(kid: str) -> Row:
    """2e: the phone page's queries with the chain check (v2) against without it (v1)."""
    counts = {}
    Client().get("/m/WARM")  # the console's status snapshot is read once per process
    for version, make in ((2, phone_token), (1, v1_token)):
        lic, text = _sign(kid)
        record_issued_license(lic, text, at=clock.now())
        url = f"/m/{make(kid, lic.license_id, uuid.uuid4(), license_secret(text))}"
        client = Client()
        for step in ("first scan", "reload"):
            with CaptureQueriesContext(connection) as captured:
                assert client.get(url).status_code == 200
            counts[version, step] = len(captured.captured_queries)
            if os.environ.get("BENCH_SHOW_QUERIES"):
                for query in captured.captured_queries:
                    print(version, step, query["sql"][:150])
    extra = max(counts[2, step] - counts[1, step] for step in ("first scan", "reload"))
    return Row(
        "2e",
        "chain check on the phone page: queries v2 vs v1",
        f"+{extra} queries",
        "<= +1",
        extra <= 1,
        [
            f"first scan {counts[2, 'first scan']} with the chain check, "
            f"{counts[1, 'first scan']} without; reload {counts[2, 'reload']} and "
            f"{counts[1, 'reload']}",
            "the binding's chain values come in the same indexed read as the binding",
        ],
    )


def _altered(token: str) -> str:
    """Change one character of the MAC: well-formed, refused before any database work."""
    i = len(token) - 4
    return token[:i] + ("B" if token[i] != "B" else "C") + token[i + 1 :]


def _baseline_url(license_id: uuid.UUID) -> tuple[str, str]:
    return (
        f"/bench/one-read/{license_id}",
        "a view doing one indexed read (issued license by license id), same server",
    )


def _phone_urls(kid: str, count: int) -> tuple[list[str], list[uuid.UUID]]:
    """Issue count licenses; return a phone URL for each (a console's QR) and their ids."""
    urls, license_ids = [], []
    for _ in range(count):
        lic, text = _sign(kid)
        record_issued_license(lic, text, at=clock.now())
        urls.append(f"/m/{phone_token(kid, lic.license_id, uuid.uuid4(), license_secret(text))}")
        license_ids.append(lic.license_id)
    return urls, license_ids


def _alternating_phases(
    port: int, phone_urls: list[str], baseline_urls: list[str], goal, per_client: int, **limits: int
):
    """Phases of the phone page and the baseline in turn; per-round throughput ratios."""
    targets: list[Phase] = []
    baselines: list[Phase] = []

    def one_round(i: int) -> tuple[float, float, float]:
        if i % 2:
            target = load(port, phone_urls, per_client)
            base = load(port, baseline_urls, per_client)
        else:
            base = load(port, baseline_urls, per_client)
            target = load(port, phone_urls, per_client)
        targets.append(target)
        baselines.append(base)
        return target.throughput, base.throughput, target.throughput / base.throughput

    ratios = rounds(one_round, goal, **limits)
    return ratios, targets, baselines


def _statuses(phases: list[Phase]) -> Counter:
    return sum((phase.statuses for phase in phases), Counter())


def phone_throughput(kid: str, quick: bool, tmp: Path) -> list[Row]:
    """Phone page under 20 and 200 concurrent clients, against a one-read view."""
    phone_urls, license_ids = _phone_urls(kid, MANY_CLIENTS)
    baseline_url, baseline_name = _baseline_url(license_ids[0])
    rows = []
    with gunicorn() as (port, how):
        load(port, phone_urls, 1)  # first scans bind; warm both paths
        load(port, [baseline_url] * CLIENTS, 2)
        for number, clients, per_client, goal in (
            ("5", CLIENTS, 15 if quick else 30, at_least(0.6)),
            ("5b", MANY_CLIENTS, 2 if quick else 4, at_least(0.5)),
        ):
            ratios, targets, baselines = _alternating_phases(
                port,
                phone_urls[:clients],
                [baseline_url] * clients,
                goal,
                per_client,
                min_rounds=5,
                step=2,
                max_rounds=11,
            )
            latencies = [ns for phase in targets for ns in phase.latencies]
            statuses, base_statuses = _statuses(targets), _statuses(baselines)
            p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
            tail = p99 / p50
            also = [
                (
                    f"statuses all 200 (phone {dict(statuses)}, baseline {dict(base_statuses)})",
                    set(statuses) == {200} and set(base_statuses) == {200},
                )
            ]
            if number == "5":
                also.append(
                    (
                        f"latency p50 {ms(p50)}, p99 {ms(p99)}: p99/p50 {tail:.2f} (goal <= 3)",
                        tail <= 3,
                    )
                )
            rows.append(
                ratio_row(
                    number,
                    f"phone page, {clients} concurrent clients, gunicorn",
                    ratios,
                    goal,
                    [
                        f"phone {ratios.target:.0f} req/s vs baseline {ratios.baseline:.0f} "
                        f"req/s; gunicorn {how}; {per_client} requests per client per phase",
                        f"baseline: {baseline_name}",
                    ],
                    also=also,
                )
            )
    return rows


def single_request(kid: str, quick: bool) -> Row:
    """9: one phone-page request at a time against one one-read request, same server."""
    phone_urls, license_ids = _phone_urls(kid, 1)
    baseline_url, baseline_name = _baseline_url(license_ids[0])
    with gunicorn() as (port, how):
        load(port, phone_urls, 3)
        load(port, [baseline_url], 3)
        goal = at_least(0.5)
        ratios, targets, baselines = _alternating_phases(
            port,
            phone_urls,
            [baseline_url],
            goal,
            40 if quick else 100,
            min_rounds=7,
            step=4,
            max_rounds=19,
        )
    statuses, base_statuses = _statuses(targets), _statuses(baselines)
    phone_ms = statistics.median(ns for phase in targets for ns in phase.latencies)
    base_ms = statistics.median(ns for phase in baselines for ns in phase.latencies)
    return ratio_row(
        "9",
        "single phone-page request vs a one-read request",
        ratios,
        goal,
        [
            f"median latency phone {ms(phone_ms)} vs baseline {ms(base_ms)} (one client, "
            f"keep-alive); gunicorn {how}",
            f"baseline: {baseline_name}",
        ],
        also=[
            (
                f"statuses all 200 (phone {dict(statuses)}, baseline {dict(base_statuses)})",
                set(statuses) == {200} and set(base_statuses) == {200},
            )
        ],
    )


# --- Row 6 -------------------------------------------------------------------------------

_BULK_LICENSES = """
INSERT INTO authority_issuedlicense
    (license_id, license_type, company, project_name, app_name, app_version,
     project_content, contract_date, issued_at, expires_at, max_nodes, kid, text,
     revoked_reason)
SELECT gen_random_uuid(), 'container', 'Bulk customer ' || g, 'Reports', %s, '11.0',
       'reports', DATE '2026-01-15', TIMESTAMPTZ '2026-01-15 09:30:00+00',
       DATE '2099-12-31', 4, %s, %s, ''
FROM generate_series(1, %s) AS g
"""
_BULK_BINDINGS = """
INSERT INTO authority_binding
    (license_id, installation_id, node_count, state, first_bound, last_verified,
     last_nonce, unbound_reason, chain_tip, chain_successors, chain_past, chain_refused,
     copy_chain)
SELECT id, gen_random_uuid(), 1, 'active', now(), now(), '', '', '', '[]', '[]', '[]', ''
FROM authority_issuedlicense WHERE id > %s
"""


def _bulk_text(kid: str) -> str:
    """One real signed file for every bulk row: the phone page reads its signature."""
    return _sign(kid)[1]


def _fill(count: int, kid: str, text: str) -> float:
    """Add count licenses, each bound to its own installation; return seconds taken."""
    start = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM authority_issuedlicense")
        (last_id,) = cursor.fetchone()
        cursor.execute(_BULK_LICENSES, [settings.APP_NAME, kid, text, count])
        cursor.execute(_BULK_BINDINGS, [last_id])
        cursor.execute("VACUUM ANALYZE authority_issuedlicense")
        cursor.execute("VACUUM ANALYZE authority_binding")
        cursor.execute("VACUUM ANALYZE authority_auditevent")
    return time.monotonic() - start


def _sample(size: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.license_id, b.installation_id FROM authority_issuedlicense l "
            "JOIN authority_binding b ON b.license_id = l.id AND b.state = 'active' "
            "ORDER BY random() LIMIT %s",
            [size],
        )
        return [(uuid.UUID(str(a)), uuid.UUID(str(b))) for a, b in cursor.fetchall()]


def _phone_latency(kid: str, size: int, repeats: int, text: str) -> tuple[list[float], Counter]:
    """Median time of one phone verification (an already-bound installation re-scanning)."""
    client = Client()
    statuses: Counter = Counter()
    medians = []
    for _ in range(repeats):
        secret = license_secret(text)
        urls = [f"/m/{phone_token(kid, lic, inst, secret)}" for lic, inst in _sample(size)]
        times = []
        for url in urls:
            start = time.perf_counter_ns()
            response = client.get(url)
            times.append(time.perf_counter_ns() - start)
            statuses[response.status_code] += 1
        medians.append(statistics.median(times))
    return medians, statuses


def phone_at_scale(kid: str, quick: bool) -> Row:
    """Phone verification with 1,000,000 licenses and bindings, against 1,000."""
    big = 100_000 if quick else 1_000_000
    size, repeats = (100, 3) if quick else (200, 5)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE authority_binding, authority_issuedlicense, authority_auditevent")
    text = _bulk_text(kid)
    _fill(1000, kid, text)
    small, small_statuses = _phone_latency(kid, size, repeats, text)
    fill_seconds = _fill(big - 1000, kid, text)
    big_medians, big_statuses = _phone_latency(kid, size, repeats, text)
    small_ns, big_ns = statistics.median(small), statistics.median(big_medians)
    # The sizes cannot alternate (filling takes a while): each round at 1,000,000 against
    # the median at 1,000, for the spread.
    per_round = [value / small_ns for value in big_medians]
    ratio = big_ns / small_ns
    statuses = small_statuses + big_statuses
    return Row(
        "6",
        f"phone page with {big:,} licenses vs 1,000",
        f"{ratio:.2f}x",
        "<= 1.1x",
        ratio <= 1.1 and set(statuses) == {200},
        [
            f"median {ms(big_ns)} at {big:,} vs {ms(small_ns)} at 1,000 "
            f"({size} random licenses x {repeats})",
            f"filled {big - 1000:,} licenses and bindings in {fill_seconds:.0f} s "
            f"(INSERT ... SELECT generate_series, then VACUUM ANALYZE); statuses "
            f"{dict(statuses)}",
        ],
        spread=f"{min(per_round):.2f}/{ratio:.2f}/{max(per_round):.2f}",
    )


# --- Row 7 -------------------------------------------------------------------------------

CSRF_SECRET = "b3nchCsrfS3cretb3nchCsrfS3cret00"  # 32 characters, as Django's own


def wrong_codes(kid: str, quick: bool, tmp: Path) -> Row:
    """200 concurrent wrong codes: exactly LOCKOUT_MAX_ATTEMPTS compared, no 5xx."""
    burst = 200
    install_license(kid)
    Installation.objects.update(failed_attempts=0, locked_until=None, lock_count=0)
    result = refresh_challenge()  # a fresh 5-minute QR, whatever ran before
    assert result.challenge is not None, result.causes
    challenge, _mac = decode_token(result.challenge.token)
    # Any code the verifier refuses is a wrong one (the console keeps no code to add 1 to).
    wrong = next(
        code
        for code in ("000000", "000001")
        if not check_verifier(
            result.challenge.code_verifier, code, challenge.digest(), verifier_pepper()
        )
    )
    session = manager_client().cookies["sessionid"].value
    checked_actions = [AuditAction.CODE_REFUSED, AuditAction.LOCKED]
    before = AuditEvent.objects.filter(action__in=checked_actions).count()
    body = f"csrfmiddlewaretoken={CSRF_SECRET}&code={wrong}"
    headers = {
        "Cookie": f"sessionid={session}; csrftoken={CSRF_SECRET}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    statuses: Counter = Counter()
    lock = threading.Lock()
    with gunicorn() as (port, how):
        barrier = threading.Barrier(burst)

        def submit() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PHASE_SECONDS)
            barrier.wait(timeout=PHASE_SECONDS)
            try:
                conn.request("POST", "/system/registration/code", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                outcome: object = response.status
            except (OSError, http.client.HTTPException) as exc:
                outcome = type(exc).__name__
            finally:
                conn.close()
            with lock:
                statuses[outcome] += 1

        threads = [threading.Thread(target=submit) for _ in range(burst)]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=PHASE_SECONDS * 2)
        elapsed = time.monotonic() - start
    checked = AuditEvent.objects.filter(action__in=checked_actions).count() - before
    installation = Installation.objects.get()
    errors = {k: v for k, v in statuses.items() if not isinstance(k, int) or k >= 500}
    limit = settings.LOCKOUT_MAX_ATTEMPTS
    locked_for = installation.locked_until - clock.now() if installation.locked_until else None
    ok = checked == limit and not errors and sum(statuses.values()) == burst
    return Row(
        "7",
        f"{burst} concurrent wrong codes",
        f"{checked} checked",
        f"= {limit}, no 5xx",
        ok,
        [
            f"responses {dict(sorted(statuses.items(), key=str))} in {elapsed:.1f} s; "
            f"gunicorn {how}",
            f"audit: {checked} code checks recorded; failed_attempts "
            f"{installation.failed_attempts}, locked for "
            f"{(locked_for or timedelta()).total_seconds() / 60:.0f} min",
        ],
    )
