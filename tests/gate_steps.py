"""Steps shared by the gate tests: register, restart and lock through the real flows.

Changes are committed inside django_capture_on_commit_callbacks(execute=True), so the
status cache is invalidated exactly as after a real request.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager

from django.conf import settings

from registration.cluster import identity, lifecycle
from registration.flows.code import Outcome, submit_code
from registration.flows.upload import upload_license
from registration.models import ChallengeState, Installation, QrChallenge, RegistrationState
from tests.phone_steps import phone_code, wrong_code

Capture = Callable[..., AbstractContextManager]


def upload(capture: Capture, text: str) -> QrChallenge:
    """Upload a license through flows; return its open challenge."""
    with capture(execute=True):
        result = upload_license(text.encode(), "container")
    assert result.accepted, result.validation.codes
    return QrChallenge.objects.get(state=ChallengeState.OPEN)


def register(capture: Capture, issue: Callable, **fields: object) -> None:
    """Issue a license, upload it, scan the QR and submit the code: Registered."""
    _lic, text = issue(**fields)
    challenge = upload(capture, text)
    with capture(execute=True):
        outcome = submit_code(phone_code(challenge)).outcome
    assert outcome == Outcome.ACCEPTED


def lock(capture: Capture, issue: Callable) -> None:
    """Upload a license and submit wrong codes until submission locks."""
    _lic, text = issue()
    challenge = upload(capture, text)
    wrong = wrong_code(challenge)
    outcome = None
    while outcome != Outcome.WRONG_AND_LOCKED:
        with capture(execute=True):
            outcome = submit_code(wrong).outcome
        assert outcome in (Outcome.WRONG, Outcome.WRONG_AND_LOCKED)


def restart(capture: Capture) -> None:
    """Restart the project: this node starts a new life with no other node alive."""
    with capture(execute=True):
        lifecycle.start_node(identity.NodeIdentity(settings.NODE_NAME, uuid.uuid4()))
    assert Installation.objects.get().state == RegistrationState.EXPIRED_DUE_TO_RESTART
