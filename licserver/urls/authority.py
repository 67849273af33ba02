"""The vendor's verification service alone (LICSERVER_ROLES=authority)."""

from django.urls import include, path

from licserver.urls import shared
from licserver.urls.shared import handler400, handler403, handler404, handler500  # noqa: F401

urlpatterns = [*shared.urlpatterns, path("", include("registration.authority.urls"))]
