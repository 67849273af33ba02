"""The product's settings, with the bench's URLconf (adds the one-indexed-read view)."""

from licserver.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
