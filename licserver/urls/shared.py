"""What every licserver process serves: logins, Django admin, the language switch, /healthz.

The root URLconfs beside this module add the console's and the verification service's
pages; each re-exports the error handlers below.
"""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.urls import include, path
from django.utils.translation import gettext as _

from licserver import health
from registration.net import login_account_key
from registration.views.errors import View, rate_limited

# Password guessing: every login form counts its POSTs per client address (RATE_LOGIN) and
# its failed sign-ins per account named (RATE_LOGIN_ACCOUNT), so rotating addresses
# against one account does not help, and good sign-ins never lock the owner out. A POST
# the address limit refuses is not counted against the account.
POST = frozenset({"POST"})
_per_address = rate_limited("login", "RATE_LOGIN", methods=POST)


def _failed_sign_in(response: HttpResponse) -> bool:
    # A good sign-in redirects; a failed one shows the form again.
    return response.status_code == 200


def _account_message() -> str:
    return _(
        "Too many failed sign-ins for this account. Wait up to an hour, or ask another "
        "administrator to reset its password."
    )


_per_account = rate_limited(
    "login-account",
    "RATE_LOGIN_ACCOUNT",
    methods=POST,
    key=login_account_key,
    counts=_failed_sign_in,
    message=_account_message,
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
