"""Quotas' part of /api/v1/ (included from portal/urls.py beside the tenants' API)."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

import tenants.converters  # noqa: F401  # registers the <id:...> path converter
from quotas.api import views

router = DefaultRouter(use_regex_path=False)  # ids through <id:...> (tenants/converters.py)
router.include_format_suffixes = False
router.include_root_view = False
router.register("quota-requests", views.QuotaRequestViewSet, basename="quota-request")
router.register("notifications", views.NotificationViewSet, basename="notification")

urlpatterns = [path("", include(router.urls))]
