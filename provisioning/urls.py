"""Provisioning pages outside the API (included from portal/urls.py)."""

from django.urls import path

import tenants.converters  # noqa: F401  # registers the <id:...> path converter
from provisioning import views

app_name = "provisioning"

urlpatterns = [
    path("tenants/<id:pk>/push/", views.tenant_push, name="tenant_push"),
    path("tenants/<id:pk>/kubeconfig/<id:cluster_id>/", views.kubeconfig_download, name="kubeconfig"),
    path("tenants/<id:pk>/kubeconfig/<id:cluster_id>/help/", views.kubeconfig_help, name="kubeconfig_help"),
    path("clusters/<id:pk>/connection/", views.cluster_connection, name="cluster_connection"),
    path(
        "clusters/<id:pk>/connection/delete/",
        views.cluster_connection_delete,
        name="cluster_connection_delete",
    ),
    path("clusters/<id:pk>/hadoop-files/<str:name>", views.hadoop_file, name="hadoop_file"),
    path("clusters/<id:pk>/test/", views.cluster_test, name="cluster_test"),
    path("clusters/<id:pk>/quota-engine/", views.cluster_quota_engine, name="cluster_quota_engine"),
]
