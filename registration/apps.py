from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegistrationConfig(AppConfig):
    """The customer's console, installed only where the console role runs."""

    name = "registration"
    verbose_name = _("Registration")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from registration import checks  # noqa: F401  (registers the system checks)

    # Server process hooks (licserver.processes calls them on every installed app that has
    # them): a console server process is a node of the cluster.

    def start_server_process(self) -> None:
        from registration.cluster import lifecycle

        lifecycle.start_process()

    def release_server_process(self) -> None:
        from registration.cluster import lifecycle

        lifecycle.release_node()
