"""WSGI entry point for licserver."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "licserver.settings")

application = get_wsgi_application()

# Every server process that loads the app joins its node: the first one of a node's life
# starts it (project_started), the others attach. Test servers never import this module.
from registration import lifecycle  # noqa: E402  (needs the app loaded above)

lifecycle.start_process()
