"""Reports: the product's pages, open only while the project is registered."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from registration.gate import registration_required


@require_GET
@login_required
@registration_required
def reports_page(request: HttpRequest) -> HttpResponse:
    """List the reports (none yet)."""
    return render(request, "reports/reports.html", {"reports": []})
