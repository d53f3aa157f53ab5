"""Provisioning pages outside the API (included from portal/urls.py)."""

from django.urls import path

import portal.converters  # noqa: F401  # registers the <id:...> path converter
from provisioning import views

app_name = "provisioning"

urlpatterns = [
    path("tenants/<id:pk>/kubeconfig/<id:cluster_id>/", views.kubeconfig_download, name="kubeconfig"),
]
