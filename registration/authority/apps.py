from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuthorityConfig(AppConfig):
    """The vendor's verification service, installed only where the authority role runs."""

    name = "registration.authority"
    label = "authority"
    verbose_name = _("Verification service")
    default_auto_field = "django.db.models.BigAutoField"
