"""Error pages that fit the caller: JSON under /api/ (what the OpenAPI document promises), the
console's own pages elsewhere (templates/400.html, 403.html, 404.html, 500.html). With debug off,
as in every default, nothing of the URL patterns, the settings or a traceback reaches the caller."""

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

# What an API caller is told of a request Django refused; anything else is only "Bad request."
# (a Host the console does not serve, for one, says nothing of the hosts it does).
BAD_REQUESTS = {
    RequestDataTooBig: "The request body is larger than the server takes (DATA_UPLOAD_MAX_MEMORY_SIZE).",
    TooManyFieldsSent: "The request has more fields than the server takes.",
    TooManyFilesSent: "The request has more files than the server takes.",
}


def _api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A request Django refuses before any view, e.g. a Host it does not serve or too many fields."""
    if _api(request):
        detail = next((text for kind, text in BAD_REQUESTS.items() if isinstance(exception, kind)), None)
        return JsonResponse({"detail": detail or "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _api(request):
        return JsonResponse({"detail": "You do not have permission to perform this action."}, status=403)
    return defaults.permission_denied(request, exception)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A URL that matches nothing, e.g. /api/v1/tenants/abc/provisioning/ (ids are integers)."""
    if _api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """What the caller sees of a bug: the traceback goes to the log only."""
    if _api(request):
        return JsonResponse({"detail": "Server error; the details are in the log."}, status=500)
    return defaults.server_error(request)
