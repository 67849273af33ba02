"""The console's pages: System Management > Registration Management, and what the rest of
the product and its operators ask (/reports/, /api/registration, /metrics)."""

from django.urls import include, path
from django.views.generic import RedirectView

from registration.views import api, console, ops, reports, request

system_patterns = [
    path("registration/", console.registration_page, name="registration"),
    path("registration/upload", console.upload_license, name="upload"),
    path("registration/upload/refused", console.upload_refused, name="upload_refused"),
    path("registration/upload/confirm", console.confirm_upload, name="confirm_upload"),
    path("registration/upload/replace", console.replace_license, name="replace_license"),
    path("registration/challenge", console.refresh_challenge, name="challenge"),
    path("registration/code", console.submit_code, name="code"),
    path("registration/release", console.release_license, name="release"),
    path("version/", console.version_page, name="version"),
    path("version/request", request.license_request, name="license_request"),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="registration:registration"), name="home"),
    path("system/", include((system_patterns, "registration"))),
    path("reports/", reports.reports_page, name="reports"),
    path("api/registration", api.registration_api, name="api-registration"),
    path("metrics", ops.metrics, name="metrics"),
]
