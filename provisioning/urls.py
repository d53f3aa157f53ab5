"""Provisioning pages outside the API (included from portal/urls.py)."""

from django.urls import path

from provisioning import views

app_name = "provisioning"

urlpatterns = [
    path("tenants/<int:pk>/kubeconfig/<int:cluster_id>/", views.kubeconfig_download, name="kubeconfig"),
]
