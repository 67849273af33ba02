from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from registration.views import api, ops, reports
from registration.views.errors import rate_limited

# Password guessing: every login form counts its POSTs per client address (RATE_LOGIN).
throttled_login = rate_limited("login", "RATE_LOGIN", methods=frozenset({"POST"}))

urlpatterns = [
    path("accounts/login/", throttled_login(auth_views.LoginView.as_view()), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/login/", throttled_login(admin.site.login), name="admin-login"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", ops.healthz, name="healthz"),
]

if "console" in settings.LICSERVER_ROLES:
    urlpatterns += [
        path("", RedirectView.as_view(pattern_name="registration:registration"), name="home"),
        path("system/", include("registration.urls")),
        path("reports/", reports.reports_page, name="reports"),
        path("api/registration", api.registration_api, name="api-registration"),
        path("metrics", ops.metrics, name="metrics"),
    ]
if "authority" in settings.LICSERVER_ROLES:
    urlpatterns += [path("", include("registration.phone_urls"))]

handler400 = "licserver.errors.bad_request"
handler403 = "licserver.errors.permission_denied"
handler404 = "licserver.errors.not_found"
handler500 = "licserver.errors.server_error"
