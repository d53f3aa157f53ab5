"""Provisioning's part of /api/v1/ (included from portal/urls.py beside tenants.api.urls)."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

import tenants.converters  # noqa: F401  # registers the <id:...> path converter
from provisioning.api import views

router = DefaultRouter(use_regex_path=False)  # ids through <id:...> (tenants/converters.py)
# No /tenants/1.json twins of every URL: undocumented, and a 500 for custom actions (move.json).
router.include_format_suffixes = False
router.include_root_view = False
router.register("kubernetes-connections", views.ConnectionViewSet, basename="kubernetes-connection")
router.register("hadoop-connections", views.HadoopConnectionViewSet, basename="hadoop-connection")

urlpatterns = [
    path("tenants/<id:pk>/provisioning/", views.TenantStatusView.as_view(), name="tenant-provisioning"),
    path(
        "tenants/<id:pk>/provisioning/push/", views.TenantPushView.as_view(), name="tenant-provisioning-push"
    ),
    path(
        "tenants/<id:pk>/provisioning/preview/",
        views.TenantPreviewView.as_view(),
        name="tenant-provisioning-preview",
    ),
    path("tenants/<id:pk>/kubeconfig/", views.KubeconfigView.as_view(), name="tenant-kubeconfig"),
    path("provisioning/statuses/", views.StatusListView.as_view(), name="provisioning-statuses"),
    path("provisioning/manifests/", views.ManifestExportView.as_view(), name="provisioning-manifests"),
    path("provisioning/hadoop-export/", views.HadoopExportView.as_view(), name="provisioning-hadoop-export"),
    path("", include(router.urls)),
]
