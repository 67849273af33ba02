"""What every licserver process serves: logins, Django admin, the language switch, /healthz.

The root URLconfs beside this module add the console's and the verification service's
pages; each re-exports the error handlers below.
"""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from licserver import health
from registration.net import login_account_key
from registration.views.errors import View, rate_limited

# Password guessing: every login form counts its POSTs per client address (RATE_LOGIN) and
# per account named (RATE_LOGIN_ACCOUNT), so rotating addresses against one account does
# not help. Either limit answers the same 429 page; a POST the address limit refuses is not
# counted against the account.
POST = frozenset({"POST"})
_per_address = rate_limited("login", "RATE_LOGIN", methods=POST)
_per_account = rate_limited(
    "login-account", "RATE_LOGIN_ACCOUNT", methods=POST, key=login_account_key
)


def throttled_login(view: View) -> View:
    return _per_address(_per_account(view))


urlpatterns = [
    path("accounts/login/", throttled_login(auth_views.LoginView.as_view()), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/login/", throttled_login(admin.site.login), name="admin-login"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", health.healthz, name="healthz"),
]

handler400 = "licserver.errors.bad_request"
handler403 = "licserver.errors.permission_denied"
handler404 = "licserver.errors.not_found"
handler500 = "licserver.errors.server_error"
