"""Project-wide error pages: a plain message in the site's layout, never a traceback."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.utils.translation import gettext as _


def _render(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    template = loader.get_template("error.html")
    body = template.render({"title": title, "message": message}, request)
    return HttpResponse(body, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _render(request, 400, _("Bad request"), _("The request could not be understood."))


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _render(
        request, 403, _("Permission denied"), _("You do not have permission to open this page.")
    )


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _render(request, 404, _("Not found"), _("There is no such page."))


def server_error(request: HttpRequest) -> HttpResponse:
    # No request context: the failure may be in a context processor or the database.
    template = loader.get_template("error.html")
    body = template.render(
        {"title": _("Server error"), "message": _("Something went wrong. Try again later.")}
    )
    return HttpResponse(body, status=500)
