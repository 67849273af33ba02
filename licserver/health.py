"""/healthz for load balancers, on every side: never behind login or licensing."""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

log = logging.getLogger(__name__)


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
