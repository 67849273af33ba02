"""The customer's console alone (LICSERVER_ROLES=console)."""

from django.urls import include, path

from licserver.urls import shared
from licserver.urls.shared import handler400, handler403, handler404, handler500  # noqa: F401

urlpatterns = [*shared.urlpatterns, path("", include("registration.urls"))]
