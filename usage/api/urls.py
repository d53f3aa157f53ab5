"""Usage's part of /api/v1/ (included from portal/urls.py beside tenants.api.urls)."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

import tenants.converters  # noqa: F401  # registers the <id:...> path converter
from usage.api import views

router = DefaultRouter(use_regex_path=False)  # ids through <id:...> (tenants/converters.py)
router.include_format_suffixes = False
router.include_root_view = False
router.register("workloads", views.WorkloadViewSet, basename="workload")

urlpatterns = [
    path("tenants/<id:pk>/usage/", views.TenantUsageView.as_view(), name="tenant-usage"),
    path("showback/", views.ShowbackView.as_view(), name="showback"),
    path("showback/prices/", views.PoolPricesView.as_view(), name="showback-prices"),
    path("", include(router.urls)),
]
