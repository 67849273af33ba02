"""The console's /metrics for Prometheus (token-authenticated, outside the gate: a
monitor must never be blocked by licensing). /healthz is licserver.health, on both sides."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from registration import clock, status
from registration.cluster import admission
from registration.gate import GateState, evaluate
from registration.models import Installation, QrChallenge
from registration.views.api import bearer_token_matches, unauthorized

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _gauge(name: str, help_text: str, samples: list[tuple[str, int]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    lines += [f"{name}{labels} {value}" for labels, value in samples]
    return lines


def metrics_text() -> str:
    """Read the registration figures from the database and format them for Prometheus."""
    now = clock.now()
    seat = admission.local
    value = evaluate(
        status.snapshot(),
        now,
        admitted=seat.admitted,
        seat_holders=tuple(seat.seat_holders),
    )
    installation = Installation.objects.only("failed_attempts").first()
    failed = installation.failed_attempts if installation else 0
    issued = QrChallenge.objects.count()
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
