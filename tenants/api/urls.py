from django.urls import include, path
from rest_framework.routers import DefaultRouter

import tenants.converters  # noqa: F401  # registers the <id:...> path converter
from tenants.api import views

router = DefaultRouter(use_regex_path=False)  # ids through <id:...> (tenants/converters.py)
# No /tenants/1.json twins of every URL: undocumented, and a 500 for custom actions (move.json).
router.include_format_suffixes = False
# /api/v1/ itself, the index of the lists, is portal's: it lists usage's too (portal/urls.py).
router.include_root_view = False
router.register("clusters", views.ClusterViewSet, basename="cluster")
router.register("pools", views.PoolViewSet, basename="pool")
router.register("tenants", views.TenantViewSet, basename="tenant")
router.register("allocations", views.AllocationViewSet, basename="allocation")
router.register("allocation-grants", views.AllocationGrantViewSet, basename="allocation-grant")
router.register("storage", views.StorageViewSet, basename="storage")
router.register("tenant-services", views.TenantServiceViewSet, basename="tenant-service")
router.register("volumes", views.VolumeViewSet, basename="volume")
router.register("nfs-shares", views.NfsShareViewSet, basename="nfs-share")
router.register("plans", views.PlanViewSet, basename="plan")
router.register("memberships", views.MembershipViewSet, basename="membership")
router.register("users", views.UserViewSet, basename="user")
router.register("audit", views.AuditEventViewSet, basename="audit")

urlpatterns = [
    path("", include(router.urls)),
]
