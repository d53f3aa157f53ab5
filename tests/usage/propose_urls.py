"""Canopy's URLs with a stand-in for the page the quotas app will offer under
`console:quota-request-propose` (issue 19, point 1, built beside this one): the idle-quota page
links to whatever answers that name, so its link is tested before the page exists. The stand-in
answers what it was asked, nothing more."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from portal import urls as portal_urls
from tenants import urls as tenant_urls


def propose(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.GET.urlencode(), content_type="text/plain")


console = [
    *portal_urls.console_urlpatterns,
    path("quota-requests/propose/", propose, name="quota-request-propose"),
]
urlpatterns = [path("", include((console, tenant_urls.app_name))), *portal_urls.urlpatterns[1:]]
handler404 = portal_urls.handler404
