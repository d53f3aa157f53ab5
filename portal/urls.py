from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from tenants import views as tenant_views

urlpatterns = [
    path("", tenant_views.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("tenants.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
