from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from identity import urls as identity_urls
from tenants import urls as tenant_urls

# The console's pages are tenants' and those other apps add to it (identity: revoking a user's API
# tokens from the Users page), under one namespace so templates name them all `console:...`;
# tenants, upstream of every app, links to them by name only.
console_urlpatterns = [*tenant_urls.urlpatterns, *identity_urls.console_urlpatterns]

urlpatterns = [
    path("", include((console_urlpatterns, tenant_urls.app_name))),
    path("", include("provisioning.urls")),
    path("", include("identity.urls")),  # sign-in: local, LDAP, OpenID Connect
    path("admin/", admin.site.urls),
    path("api/v1/", include("tenants.api.urls")),
    path("api/v1/", include("provisioning.api.urls")),
    path("api/v1/", include("identity.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

handler400 = "portal.errors.bad_request"
handler403 = "portal.errors.permission_denied"
handler404 = "portal.errors.not_found"
handler500 = "portal.errors.server_error"
