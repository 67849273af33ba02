"""Whether this node holds a seat of the license, kept in memory, and the middleware that
makes a node without one answer License Exhausted to everything."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.urls import Resolver404, resolve
from django.utils import translation
from django.utils.translation import gettext as _

from registration.protocol.causes import TITLES, CauseCode


@dataclass
class LocalAdmission:
    """This process's view of its node's seat: set when the node starts or loses its lease.

    Kept in memory so every request can ask without a query.
    """

    admitted: bool = True
    seat_holders: tuple[str, ...] = ()


local = LocalAdmission()


# Health checks and monitoring answer on every node, admitted or not: the state is the
# answer, and a load balancer must be able to tell a refused node from a dead one.
ADMISSION_EXEMPT_URL_NAMES = frozenset({"healthz", "api-registration", "metrics"})


def _is_exempt(request: HttpRequest) -> bool:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    return match.view_name in ADMISSION_EXEMPT_URL_NAMES


class AdmissionMiddleware:
    """On a node that was not admitted, answer every request with License Exhausted.

    The admitted nodes of the cluster keep working; this one says which nodes hold the
    seats. Costs nothing on an admitted node: the flag is in memory.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if local.admitted or _is_exempt(request):
            return self.get_response(request)
        holders = ", ".join(local.seat_holders) or "-"
        # This runs before LocaleMiddleware: speak the browser's language all the same.
        with translation.override(translation.get_language_from_request(request)):
            message = _(
                "This node (%(node)s) is not admitted: the license's nodes are all in use. "
                "Nodes holding the seats: %(holders)s."
            ) % {"node": settings.NODE_NAME, "holders": holders}
            body = loader.get_template("error.html").render(
                {"title": TITLES[CauseCode.LICENSE_EXHAUSTED], "message": message}, request
            )
        return HttpResponse(body, status=503)
