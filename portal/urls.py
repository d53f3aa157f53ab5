from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import APIRootView

from identity import urls as identity_urls
from quotas.api.urls import router as quotas_router
from tenants import urls as tenant_urls
from tenants.api.urls import router as tenants_router
from usage.api.urls import router as usage_router

# The console's pages are tenants' and those other apps add to it (identity: revoking a user's API
# tokens from the Users page), under one namespace so templates name them all `console:...`;
# tenants, upstream of every app, links to them by name only.
console_urlpatterns = [*tenant_urls.urlpatterns, *identity_urls.console_urlpatterns]

# /api/v1/'s browsable index: the lists of the tenants' API and of usage's (one router before usage
# had its own app).
api_root = APIRootView.as_view(
    api_root_dict={
        prefix: f"{basename}-list"
        for router in (tenants_router, usage_router, quotas_router)
        for prefix, _, basename in router.registry
    }
)

urlpatterns = [
    path("", include((console_urlpatterns, tenant_urls.app_name))),
    path("", include("provisioning.urls")),
    path("", include("usage.urls")),
    path("", include("quotas.urls")),
    path("", include("identity.urls")),  # sign-in: local, LDAP, OpenID Connect
    path("admin/", admin.site.urls),
    path("api/v1/", api_root, name="api-root"),
    path("api/v1/", include("tenants.api.urls")),
    path("api/v1/", include("provisioning.api.urls")),
    path("api/v1/", include("usage.api.urls")),
    path("api/v1/", include("quotas.api.urls")),
    path("api/v1/", include("identity.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

handler400 = "portal.errors.bad_request"
handler403 = "portal.errors.permission_denied"
handler404 = "portal.errors.not_found"
handler500 = "portal.errors.server_error"
