from django.urls import path

import tenants.converters  # noqa: F401  # registers the <id:...> path converter
from usage import views

app_name = "usage"

urlpatterns = [
    path("tenants/<id:pk>/usage.csv", views.tenant_usage_csv, name="tenant_usage_csv"),
    path("overview/", views.overview, name="overview"),
    path("idle-quota/", views.idle_quota, name="idle_quota"),
]
