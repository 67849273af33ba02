"""A database outage answers 503 with a plain page, and the process recovers by itself.

While the database is unreachable every request that needs it fails with
OperationalError or InterfaceError. Those become "503 Service unavailable" with a short
message and a Retry-After header: no traceback, no connection details. Nothing is kept
between requests, so when the database is back the next request succeeds: Django opens a
fresh connection (CONN_HEALTH_CHECKS drops a broken persistent one before use, and a
connection that saw an error is closed at the end of its request).

Two paths reach here. An error raised by a view comes to process_exception. An error
raised in a middleware below this one (a session saved on the way out, say) has already
been turned into a 500 by Django; the got_request_exception signal marks such a request
so that __call__ swaps that 500 for the same 503.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

log = logging.getLogger(__name__)

DB_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5
_MARK = "_licserver_db_unavailable"


def unavailable_response() -> HttpResponse:
    """Return the 503 page, rendered without the request so nothing asks the database."""
    title = _("Service unavailable")
    message = _("The database cannot be reached. Try again in a moment.")
    try:
        body = loader.get_template("error.html").render({"title": title, "message": message})
        content_type = "text/html; charset=utf-8"
    except Exception:  # the page must not fail too; plain text always renders
        log.exception("Could not render the 503 page")
        body, content_type = f"{title}\n\n{message}\n", "text/plain; charset=utf-8"
    response = HttpResponse(body, status=503, content_type=content_type)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    add_never_cache_headers(response)
    return response


@receiver(got_request_exception, dispatch_uid="licserver-dbguard")
def _mark_database_error(sender: object, request: HttpRequest | None = None, **kwargs) -> None:
    # Django sends this signal from inside its except block, so exc_info is the error.
    error = sys.exc_info()[1]
    if request is not None and isinstance(error, DB_ERRORS):
        setattr(request, _MARK, True)


class DatabaseUnavailableMiddleware:
    """Turn database connection errors into a 503 page; place it early in MIDDLEWARE."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, _MARK, False):
            return unavailable_response()
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DB_ERRORS):
            return None
        # One line, not a traceback: an outage would otherwise flood the log.
        log.error("Database unavailable for %s %s: %s", request.method, request.path, exception)
        return unavailable_response()
