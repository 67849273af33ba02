from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
]

if "console" in settings.LICSERVER_ROLES:
    urlpatterns += [
        path("", RedirectView.as_view(pattern_name="registration:registration"), name="home"),
        path("system/", include("registration.urls")),
    ]
if "authority" in settings.LICSERVER_ROLES:
    urlpatterns += [path("", include("registration.phone_urls"))]

handler400 = "licserver.errors.bad_request"
handler403 = "licserver.errors.permission_denied"
handler404 = "licserver.errors.not_found"
handler500 = "licserver.errors.server_error"
