"""Identity's part of /api/v1/ (included from portal/urls.py beside tenants.api.urls)."""

from django.urls import path

import tenants.converters  # noqa: F401  # registers the <id:...> path converter
from identity.api import views

urlpatterns = [
    path("auth/token/", views.ApiTokenView.as_view(), name="api-token"),
    path("auth/sign-out-everywhere/", views.SignOutEverywhereView.as_view(), name="api-sign-out-everywhere"),
    path("users/<id:pk>/revoke-tokens/", views.UserTokensRevokeView.as_view(), name="user-revoke-tokens"),
]
