from django.urls import path

import tenants.converters  # noqa: F401  # registers the <id:...> path converter
from usage import views

app_name = "usage"

urlpatterns = [
    path("tenants/<id:pk>/usage.csv", views.tenant_usage_csv, name="tenant_usage_csv"),
    path("overview/", views.overview, name="overview"),
    path("showback/", views.showback_page, name="showback"),
    path("showback.csv", views.showback_csv, name="showback_csv"),
    path("showback.pdf", views.showback_pdf, name="showback_pdf"),
    path("showback/prices/", views.showback_prices, name="showback_prices"),
]
