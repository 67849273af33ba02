"""GET /api/registration: the registration value for services in other languages.

Guarded by a bearer token (REGISTRATION_API_TOKEN), not by a session: no cookie is
read or set and CSRF does not apply. 200 in every registration state (the state is the
answer); 401 without the right token, and always 401 while no token is configured.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from registration.gate import current_registration


def bearer_token_matches(request: HttpRequest, expected: str) -> bool:
    """Tell whether the request carries `Authorization: Bearer <expected>`.

    Compared in constant time; an empty expected token matches nothing (disabled).
    """
    if not expected:
        return False
    scheme, _sep, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def unauthorized(realm: str) -> HttpResponse:
    """Answer 401 with a bearer challenge and no detail about the token."""
    response = JsonResponse({"error": "unauthorized"}, status=401)
    response["WWW-Authenticate"] = f'Bearer realm="{realm}"'
    add_never_cache_headers(response)
    return response


@csrf_exempt  # token-authenticated and read-only; a POST gets 405, not a CSRF page
@require_GET
def registration_api(request: HttpRequest) -> HttpResponse:
    if not bearer_token_matches(request, settings.REGISTRATION_API_TOKEN):
        return unauthorized("registration")
    response = JsonResponse(current_registration(request).as_json())
    # Each answer is for now only: no proxy or client may store it.
    add_never_cache_headers(response)
    return response
