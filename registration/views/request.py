"""Version Information > Request a license: the email the vendor needs to issue one.

Nothing is stored or sent: the page only writes the email for the admin to send. So the
form is a GET: the written email's address carries the values, and a reload, the Back
button or the language switch keep them (a POST still works the same).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from registration import clock
from registration.cluster import leases
from registration.facts import version_information
from registration.license_request import LicenseRequest, build_email
from registration.request_forms import LicenseRequestForm
from registration.views.console import manager_required

TEMPLATE = "registration/license_request.html"


@require_http_methods(["GET", "POST"])
@manager_required
@never_cache
def license_request(request: HttpRequest) -> HttpResponse:
    now = clock.now()
    live = leases.live_node_count(now)
    # More than one live node: a cluster, so the number of nodes is always asked.
    multi_node = live > 1
    initial = {"max_nodes": live} if multi_node else None
    if request.method == "POST":
        data = request.POST
    else:
        # A GET with any of the form's fields is the form sent; without, the empty form.
        data = request.GET if set(request.GET) & set(LicenseRequestForm.base_fields) else None
    form = LicenseRequestForm(data, initial=initial, now=now, multi_node=multi_node)
    info = version_information()
    context: dict[str, object] = {"form": form, "info": info, "live_nodes": live}
    if data is None:
        return render(request, TEMPLATE, context)
    if not form.is_valid():
        return render(request, TEMPLATE, context, status=400)
    wanted = LicenseRequest(
        company=form.cleaned_data["company"],
        project_name=form.cleaned_data["project_name"],
        contract_date=form.cleaned_data["contract_date"],
        max_nodes=form.cleaned_data["max_nodes"],
    )
    context["email"] = build_email(wanted, info, settings.LICENSE_REQUEST_EMAIL)
    return render(request, TEMPLATE, context)
