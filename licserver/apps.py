from django.apps import AppConfig


class LicserverConfig(AppConfig):
    """What both sides share: commands (compile_translations) and start-up checks."""

    name = "licserver"
    verbose_name = "licserver"

    def ready(self) -> None:
        from licserver import checks  # noqa: F401  (registers the system checks)
