"""The product's URLs plus the bench's baseline: a view doing one indexed read.

Served only by the bench's own gunicorn (DJANGO_SETTINGS_MODULE=bench.settings); the
product never loads this module.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from licserver.urls import both
from licserver.urls.shared import handler400, handler403, handler404, handler500  # noqa: F401
from registration.authority.models import IssuedLicense


def one_indexed_read(request: HttpRequest, license_id: str) -> HttpResponse:
    """Read one issued license by its unique license id; answer its company."""
    company = (
        IssuedLicense.objects.filter(license_id=license_id).values_list("company", flat=True)
    ).first()
    return HttpResponse(company or "", content_type="text/plain")


urlpatterns = [
    path("bench/one-read/<uuid:license_id>", one_indexed_read),
    *both.urlpatterns,
]
