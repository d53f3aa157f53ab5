"""Identity's pages (included from portal/urls.py): signing in and out at the top level, under the
names Django and mozilla-django-oidc look for, and its pages of the console, in the console's
namespace beside tenants' (portal/urls.py puts them together)."""

from django.contrib.auth import views as auth_views
from django.urls import path

import tenants.converters  # noqa: F401  # registers the <id:...> path converter
from identity import views

urlpatterns = [
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/sign-out-everywhere/", views.sign_out_everywhere, name="sign_out_everywhere"),
    path(
        "oidc/authenticate/", views.OIDCAuthenticationRequestView.as_view(), name="oidc_authentication_init"
    ),
    path(
        "oidc/callback/", views.OIDCAuthenticationCallbackView.as_view(), name="oidc_authentication_callback"
    ),
]

# The Users page's "Revoke API tokens" (templates/tenants/users.html: console:user_revoke_tokens).
console_urlpatterns = [
    path("users/<id:pk>/revoke-tokens/", views.user_revoke_tokens, name="user_revoke_tokens"),
]
