"""Concurrent submissions and scans on PostgreSQL: row locks, real threads, real connections."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from registration import clock
from registration.authority.binding import verify_for_phone
from registration.authority.issuing import IssueError
from registration.authority.models import Binding, IssuedLicense
from registration.flows.challenge import refresh_challenge
from registration.flows.code import Outcome, submit_code
from registration.flows.upload import upload_license
from registration.installation import get_installation
from registration.models import AuditAction, AuditEvent, ChallengeState, QrChallenge
from tests.conftest import needs_postgres
from tests.phone_steps import crafted_token, phone_code, wrong_code
from tests.test_renewal import renew

pytestmark = [needs_postgres, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def in_threads(count: int, work: Callable[[int], object]) -> list[object]:
    """Run work(i) in count threads released together; each uses and closes its own
    database connection. An exception in any thread fails the test."""
    barrier = threading.Barrier(count)

    def run(index: int) -> object:
        try:
            barrier.wait(timeout=30)
            return work(index)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(run, i) for i in range(count)]
        return [f.result(timeout=120) for f in futures]


@pytest.fixture
def uploaded(frozen_clock, issue) -> QrChallenge:
    _, text = issue()
    result = upload_license(text.encode(), "container")
    assert result.accepted
    return result.challenge


def test_fifty_parallel_wrong_codes_check_at_most_five(uploaded):
    wrong = wrong_code(uploaded)

    results = in_threads(50, lambda _i: submit_code(wrong).outcome)

    outcomes = Counter(results)
    assert outcomes == {
        Outcome.WRONG: 4,
        Outcome.WRONG_AND_LOCKED: 1,
        Outcome.LOCKED: 45,
    }
    refusals = AuditEvent.objects.filter(action__in=[AuditAction.CODE_REFUSED, AuditAction.LOCKED])
    assert refusals.count() == 5
    assert refusals.filter(action=AuditAction.LOCKED).count() == 1
    installation = get_installation()
    assert installation.failed_attempts == 5
    assert installation.lock_count == 1
    assert installation.locked_until is not None


def test_the_right_code_from_ten_threads_is_accepted_once(uploaded):
    code = phone_code(uploaded)

    results = in_threads(10, lambda _i: submit_code(code).outcome)

    assert Counter(results) == {Outcome.ACCEPTED: 1, Outcome.NO_CHALLENGE: 9}
    assert AuditEvent.objects.filter(action=AuditAction.CODE_ACCEPTED).count() == 1
    assert QrChallenge.objects.get(pk=uploaded.pk).state == ChallengeState.CONSUMED
    assert get_installation().failed_attempts == 0


def test_two_first_scans_from_two_installations_bind_once(frozen_clock, issue):
    lic, _ = issue()
    tokens = [crafted_token(lic.license_id, installation_id=uuid.uuid4()) for _ in range(2)]

    def scan(index: int) -> tuple[bool, tuple[str, ...]]:
        result = verify_for_phone(tokens[index], now=clock.now())
        return result.ok, tuple(p.title for p in result.problems)

    results = in_threads(2, scan)

    assert sorted(results) == [
        (False, ("The maximum license number has been reached.",)),
        (True, ()),
    ]
    assert Binding.objects.count() == 1


def test_refresh_racing_a_submission_leaves_one_open_challenge(uploaded):
    code = phone_code(uploaded)

    def work(index: int) -> object:
        return refresh_challenge() if index % 2 else submit_code(code).outcome

    results = in_threads(8, work)

    # Never two open challenges (the partial unique index would have raised), and the
    # one right code is accepted at most once, only while its challenge was still open.
    assert QrChallenge.objects.filter(state=ChallengeState.OPEN).count() == 1
    assert results[::2].count(Outcome.ACCEPTED) <= 1


def test_two_issuers_renewing_one_license_at_once_make_one_renewal(frozen_clock, issue):
    lic, text = issue(max_nodes=1)
    result = upload_license(text.encode(), "container")
    assert submit_code(phone_code(result.challenge)).outcome == Outcome.ACCEPTED

    def attempt(_index: int) -> str:
        try:
            renew(lic)
        except IssueError as exc:
            return exc.code
        return "issued"

    results = in_threads(2, attempt)

    assert Counter(results) == {"issued": 1, "renews_renewed": 1}
    assert IssuedLicense.objects.filter(renews__license_id=lic.license_id).count() == 1
    # The binding moved once, to the one renewal.
    binding = Binding.objects.get()
    assert binding.license.renews is not None


def _someone_waits_for_a_lock_of(holder_pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_locks WHERE NOT granted AND pid <> %s AND locktype = 'transactionid'",
            [holder_pid],
        )
        return cursor.fetchone() is not None


@pytest.mark.parametrize("purpose", ["release", "register"])
def test_a_scan_racing_a_support_unbind_does_not_undo_it(frozen_clock, issue, purpose):
    """Support unbinds (its row lock covers the binding and its license; not committed
    yet) while the phone scans: the scan waits for the unbind and then sees the license
    free; it never writes the old binding back over the unbind."""
    from django.db import transaction

    from registration.authority.models import BindingState
    from registration.authority.support import unbind
    from registration.flows.release import release_registration
    from tests.processes import wait_for

    _, text = issue()
    result = upload_license(text.encode(), "container")
    assert submit_code(phone_code(result.challenge)).outcome == Outcome.ACCEPTED
    if purpose == "release":
        token = release_registration().token
    else:
        token = refresh_challenge().challenge.token
    binding = Binding.objects.get()
    scanned: dict[str, object] = {}

    def scan() -> None:
        try:
            scanned["result"] = verify_for_phone(token, now=clock.now())
        finally:
            connection.close()

    with transaction.atomic():
        unbind(binding.pk, actor=None, reason="Server gone", now=clock.now())
        holder = connection.connection.info.backend_pid
        worker = threading.Thread(target=scan)
        worker.start()
        wait_for(lambda: _someone_waits_for_a_lock_of(holder), "the scan to wait for the unbind")
    worker.join(timeout=60)

    binding.refresh_from_db()
    assert (binding.state, binding.unbound_reason) == (BindingState.UNBOUND, "Server gone")
    outcome = scanned["result"]
    if purpose == "release":
        assert [p.code.value for p in outcome.problems] == ["not_bound"]
    else:
        # The license was free when the scan went on: it binds anew.
        assert outcome.ok
        assert Binding.objects.filter(state=BindingState.ACTIVE).exclude(pk=binding.pk).exists()
