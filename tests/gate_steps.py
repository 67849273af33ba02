"""Steps shared by the gate tests: register, restart and lock through the real flows.

Changes are committed inside django_capture_on_commit_callbacks(execute=True), so the
status cache is invalidated exactly as after a real request.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager

from django.conf import settings

from registration import authority, clock, flows, lifecycle, nodes
from registration.models import Challenge, ChallengeState, Installation, RegistrationState

Capture = Callable[..., AbstractContextManager]


def upload(capture: Capture, text: str) -> Challenge:
    """Upload a license through flows; return its open challenge."""
    with capture(execute=True):
        result = flows.upload_license(text.encode(), "container")
    assert result.accepted, result.validation.codes
    return Challenge.objects.get(state=ChallengeState.OPEN)


def phone_code(challenge: Challenge) -> str:
    """The 6-digit code the vendor's phone page shows for this challenge."""
    result = authority.verify_for_phone(challenge.token, now=clock.now())
    assert result.ok, result.problems
    return result.code


def register(capture: Capture, issue: Callable, **fields: object) -> None:
    """Issue a license, upload it, scan the QR and submit the code: Registered."""
    _lic, text = issue(**fields)
    challenge = upload(capture, text)
    with capture(execute=True):
        outcome = flows.submit_code(phone_code(challenge)).outcome
    assert outcome == flows.Outcome.ACCEPTED


def wrong_code(challenge: Challenge) -> str:
    right = phone_code(challenge)
    return "000000" if right != "000000" else "111111"


def lock(capture: Capture, issue: Callable) -> None:
    """Upload a license and submit wrong codes until submission locks."""
    _lic, text = issue()
    challenge = upload(capture, text)
    wrong = wrong_code(challenge)
    outcome = None
    while outcome != flows.Outcome.WRONG_AND_LOCKED:
        with capture(execute=True):
            outcome = flows.submit_code(wrong).outcome
        assert outcome in (flows.Outcome.WRONG, flows.Outcome.WRONG_AND_LOCKED)


def restart(capture: Capture) -> None:
    """Restart the project: this node starts a new life with no other node alive."""
    with capture(execute=True):
        lifecycle.start_node(nodes.NodeIdentity(settings.NODE_NAME, uuid.uuid4()))
    assert Installation.objects.get().state == RegistrationState.EXPIRED_RESTART
