"""WSGI entry point for licserver."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "licserver.settings")

application = get_wsgi_application()

# Every server process that loads the app runs the apps' start hooks: on a console, the
# first process of a node's life starts it, the others attach. Test servers never import
# this module.
from licserver import processes  # noqa: E402  (needs the apps loaded above)

processes.start_server_process()
