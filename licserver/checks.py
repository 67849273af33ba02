"""Start-up checks for every licserver process, whichever side it serves."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=True)
def check_shared_cache(app_configs=None, **kwargs) -> list:
    """In production the rate limits and the status cache must be shared by all processes."""
    if settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        return []
    return [
        Warning(
            "CACHE_URL is not set: each server process keeps its own rate-limit counters "
            "and registration status cache.",
            hint="Set CACHE_URL=redis://... (shared by every worker and node).",
            id="registration.W004",
        )
    ]
