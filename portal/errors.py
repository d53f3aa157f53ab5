"""Error pages that fit the caller: JSON under /api/ (what the OpenAPI document promises), the
console's own page elsewhere."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A URL that matches nothing, e.g. /api/v1/tenants/abc/provisioning/ (ids are integers)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
