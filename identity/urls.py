from django.contrib.auth import views as auth_views
from django.urls import path

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
