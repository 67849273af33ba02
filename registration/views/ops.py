"""Operations endpoints: /healthz for load balancers, /metrics for Prometheus.

Neither is behind login or the registration gate: a health check must never be blocked
by licensing.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from registration import clock, nodes, status
from registration.gate import GateState, evaluate
from registration.models import Challenge, Installation
from registration.views.api import bearer_token_matches, unauthorized

log = logging.getLogger(__name__)

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _plain(text: str, status_code: int) -> HttpResponse:
    response = HttpResponse(text, content_type="text/plain; charset=utf-8", status=status_code)
    add_never_cache_headers(response)
    return response


@csrf_exempt  # no session, nothing changes; a POST gets 405
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """Answer 200 while the process and the database answer, 503 otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        log.warning("Health check: the database does not answer", exc_info=True)
        return _plain("database unavailable\n", 503)
    return _plain("ok\n", 200)


def _gauge(name: str, help_text: str, samples: list[tuple[str, int]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    lines += [f"{name}{labels} {value}" for labels, value in samples]
    return lines


def metrics_text() -> str:
    """Read the registration figures from the database and format them for Prometheus."""
    now = clock.now()
    admission = nodes.local_admission
    value = evaluate(
        status.snapshot(),
        now,
        admitted=admission.admitted,
        seat_holders=tuple(admission.seat_holders),
    )
    installation = Installation.objects.only("failed_attempts").first()
    failed = installation.failed_attempts if installation else 0
    issued = Challenge.objects.count()
    lines = _gauge(
        "licserver_registration_state",
        "Registration state of this node (1 for the current state, 0 for the others).",
        [(f'{{state="{state}"}}', int(value.state == state)) for state in GateState],
    )
    lines += _gauge(
        "licserver_license_days_left",
        "Days until the license's last valid day (0 on that day); absent without a license.",
        [("", value.days_left)] if value.days_left is not None else [],
    )
    lines += _gauge("licserver_live_nodes", "Live admitted nodes.", [("", value.nodes_used)])
    lines += _gauge(
        "licserver_max_nodes",
        "Nodes the installed license allows (0 without a license).",
        [("", value.max_nodes)],
    )
    lines += _gauge(
        "licserver_failed_attempts",
        "Wrong verification codes since the last success or since the last lock ran out.",
        [("", failed)],
    )
    lines += _gauge(
        "licserver_lock_active",
        "1 while code submission is locked.",
        [("", int(value.lock_active))],
    )
    lines += [
        "# HELP licserver_challenges_issued_total QR challenges issued by this installation.",
        "# TYPE licserver_challenges_issued_total counter",
        f"licserver_challenges_issued_total {issued}",
    ]
    return "\n".join(lines) + "\n"


@csrf_exempt  # token-authenticated and read-only; a POST gets 405
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not bearer_token_matches(request, settings.METRICS_TOKEN):
        return unauthorized("metrics")
    response = HttpResponse(metrics_text(), content_type=PROMETHEUS_CONTENT_TYPE)
    add_never_cache_headers(response)
    return response
