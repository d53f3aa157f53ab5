"""Pages. The full console (tenant tree, forms, My access) arrives with the console issue; until then
the home page says where the API and the admin are."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants import selectors


def home(request: HttpRequest) -> HttpResponse:
    tenants = []
    if request.user.is_authenticated:
        tenants = list(selectors.tenant_list(user=request.user)[:50])
    return render(request, "tenants/home.html", {"tenants": tenants})
